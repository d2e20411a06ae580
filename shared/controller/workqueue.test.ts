import { FakeClock } from "./clock";
import { WorkQueue } from "./workqueue";

function newQueue() {
  const clock = new FakeClock();
  return { clock, queue: new WorkQueue(clock, { baseMs: 1000, maxMs: 8000, random: () => 0.999999 }) };
}

describe("WorkQueue", () => {
  it("collapses duplicate adds of a queued key", async () => {
    const { queue } = newQueue();
    queue.add("ns/a");
    queue.add("ns/a");
    queue.add("ns/b");
    expect(queue.len()).toBe(2);
    expect(await queue.get()).toBe("ns/a");
    expect(await queue.get()).toBe("ns/b");
  });

  it("never hands out a key being processed; an add during processing runs once afterwards", async () => {
    const { queue } = newQueue();
    queue.add("ns/a");
    const key = await queue.get();
    queue.add("ns/a");
    queue.add("ns/a");
    expect(queue.len()).toBe(0);
    queue.done(key!);
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe("ns/a");
    queue.done("ns/a");
    expect(queue.len()).toBe(0);
  });

  it("wakes a waiting worker", async () => {
    const { queue } = newQueue();
    const next = queue.get();
    queue.add("ns/x");
    expect(await next).toBe("ns/x");
  });

  it("keeps the earliest of several delayed adds", () => {
    const { clock, queue } = newQueue();
    queue.addAfter("ns/a", 5000);
    queue.addAfter("ns/a", 1000);
    queue.addAfter("ns/a", 9000);
    clock.advance(999);
    expect(queue.len()).toBe(0);
    clock.advance(1);
    expect(queue.len()).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("backs off exponentially per key up to the cap, and forget resets", () => {
    const { queue } = newQueue();
    expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited("ns/a"))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(queue.addRateLimited("ns/b")).toBe(1000);
    queue.forget("ns/a");
    expect(queue.addRateLimited("ns/a")).toBe(1000);
  });

  it("releases waiting workers on shutdown and ignores later adds", async () => {
    const { queue } = newQueue();
    const next = queue.get();
    queue.shutDown();
    expect(await next).toBeUndefined();
    queue.add("ns/a");
    expect(queue.len()).toBe(0);
  });
});
