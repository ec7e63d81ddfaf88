// A virtual clock for setTimeout/clearTimeout, so timer-driven behaviour (keep-alive,
// reconnect back-off, token renewal) is tested without waiting. `tick(ms)` runs every timer
// that falls due, in order, including timers those callbacks schedule.
export function installClock() {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
  let now = 0;
  let nextId = 1;
  const timers = new Map(); // id -> {at, callback}
  globalThis.setTimeout = (callback, delay = 0) => {
    const id = nextId++;
    timers.set(id, { at: now + Math.max(0, Number(delay) || 0), callback });
    return id;
  };
  globalThis.clearTimeout = (id) => { timers.delete(id); };
  return {
    get now() { return now; },
    // The delays (from now) of the timers still waiting.
    pending() { return [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b); },
    tick(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].callback();
      }
      now = end;
    },
    uninstall() { Object.assign(globalThis, real); },
  };
}
