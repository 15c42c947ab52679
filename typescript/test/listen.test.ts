// What `listen` does at run time (scripts/test compiles this with tsconfig.test.json and
// runs it with Node): JSON events arrive parsed, text events as they are, data that is
// not JSON goes to `invalid` and never to the handler, and `on` returns what stops it.
import { listen, type NamedEvents, type Reads } from "../typed-events.js";

interface Events {
  tick: { seq: number };
  note: string;
}
const reads: Reads<Events> = { tick: "json", note: "text" };

const failures: string[] = [];
const expect = (what: string, ok: boolean) => {
  if (!ok) failures.push(what);
};

const target = new EventTarget();
const source: NamedEvents = {
  addEventListener: (type, listener) => target.addEventListener(type, listener as EventListener),
  removeEventListener: (type, listener) => target.removeEventListener(type, listener as EventListener),
};
const send = (type: string, data: string) => target.dispatchEvent(new MessageEvent(type, { data }));

const ticks: number[] = [];
const notes: string[] = [];
const invalid: string[] = [];
const on = listen<Events>(source, reads, (event) => invalid.push(`${event.type}:${event.data}`));
const stop = on("tick", (tick) => ticks.push(tick.seq));
on("note", (text) => notes.push(text));

send("tick", '{"seq":1}');
send("tick", "not json");
send("note", '{"looks":"like json"}');
stop();
send("tick", '{"seq":2}');

expect("a JSON event arrives parsed", ticks.length === 1 && ticks[0] === 1);
expect("data that is not JSON goes to invalid, not the handler", invalid.length === 1 && invalid[0] === "tick:not json");
expect("a text event arrives as it is", notes.length === 1 && notes[0] === '{"looks":"like json"}');
expect("after stop, the handler hears nothing", !ticks.includes(2));

if (failures.length > 0) {
  throw new Error(`listen.test: ${failures.join("; ")}`); // Node exits with 1
}
console.log("listen.test: ok");
