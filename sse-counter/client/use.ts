// A typed use of every event sse-counter sends: `tsc --strict` compiles it in scripts/test
// against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { counterEvents, type CounterEvents } from "./events";

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<CounterEvents>(source, counterEvents);
  const stops = [
    on("message", (count, event) => show(`${event.lastEventId}: ${Number(count)}`)),
    on("reset", (reset) => show(`counting again (${reset.reason})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
