import { describe, expect, it } from "vitest";
import { withTimeout } from "../../src/lib/timeout.js";

describe("withTimeout", () => {
  it("settles like the promise when it settles in time", async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000, () => new Error("late"))).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error("own")), 1_000, () => new Error("late"))).rejects.toThrow("own");
  });

  it("rejects with the timeout's error, built (even asynchronously) only when the time is up", async () => {
    let built = 0;
    const never = new Promise<never>(() => {});
    const onTimeout = async () => {
      built++;
      return new Error("late");
    };
    await expect(withTimeout(never, 20, onTimeout)).rejects.toThrow("late");
    expect(built).toBe(1);
    await withTimeout(Promise.resolve(1), 20, onTimeout);
    await new Promise((r) => setTimeout(r, 40));
    expect(built).toBe(1);
  });
});
