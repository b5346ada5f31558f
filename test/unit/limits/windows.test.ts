import { describe, expect, it } from "vitest";
import { rateLimitHeaders, secondsUntilReset, windowCounts, windowStarts } from "../../../src/limits/windows";

const t = (iso: string) => Date.parse(iso);

describe("windowStarts", () => {
  it("aligns the minute and the day to UTC boundaries", () => {
    expect(windowStarts(t("2031-05-06T12:34:59.999Z"))).toEqual({
      minuteStart: t("2031-05-06T12:34:00.000Z"),
      dayStart: t("2031-05-06T00:00:00.000Z"),
    });
  });

  it("starts a new minute and day exactly at 00:00:00.000 UTC", () => {
    expect(windowStarts(t("2031-05-07T00:00:00.000Z"))).toEqual({
      minuteStart: t("2031-05-07T00:00:00.000Z"),
      dayStart: t("2031-05-07T00:00:00.000Z"),
    });
  });
});

describe("secondsUntilReset", () => {
  it("rounds half a second left up to 1 (12:34:59.500)", () => {
    expect(secondsUntilReset(t("2031-05-06T12:34:59.500Z"), 60_000)).toBe(1);
  });

  it("gives a full window at the boundary itself", () => {
    expect(secondsUntilReset(t("2031-05-06T12:35:00.000Z"), 60_000)).toBe(60);
    expect(secondsUntilReset(t("2031-05-07T00:00:00.000Z"), 86_400_000)).toBe(86_400);
  });

  it("gives 30 for the day at 23:59:30 UTC", () => {
    expect(secondsUntilReset(t("2031-05-06T23:59:30.000Z"), 86_400_000)).toBe(30);
  });
});

describe("windowCounts", () => {
  it("never reports negative remaining when a lowered limit is below the count", () => {
    const counts = windowCounts(t("2031-05-06T12:00:30.000Z"), { limitPerMinute: 3, limitPerDay: 10 }, 5, 12);
    expect(counts.minute).toEqual({ limit: 3, used: 5, remaining: 0, resetSeconds: 30 });
    expect(counts.day).toEqual({ limit: 10, used: 12, remaining: 0, resetSeconds: 43_170 });
  });
});

describe("rateLimitHeaders", () => {
  it("renders the SPEC headers and the IETF draft pair for both windows from one set of counts", () => {
    const counts = windowCounts(t("2031-05-06T23:59:30.000Z"), { limitPerMinute: 60, limitPerDay: 1000 }, 12, 990);
    expect(rateLimitHeaders(counts)).toEqual({
      "X-RateLimit-Limit": "60",
      "X-RateLimit-Remaining": "48",
      "X-RateLimit-Reset": "30",
      "X-RateLimit-Daily-Limit": "1000",
      "X-RateLimit-Daily-Remaining": "10",
      "RateLimit-Policy": '"minute";q=60;w=60, "day";q=1000;w=86400',
      RateLimit: '"minute";r=48;t=30, "day";r=10;t=30',
    });
  });
});
