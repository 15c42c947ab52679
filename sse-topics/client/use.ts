// A typed use of every event sse-topics sends: `tsc --strict` compiles it in scripts/test
// against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { topicsEvents, type TopicsEvents } from "./events";

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<TopicsEvents>(source, topicsEvents);
  const stops = [
    // Updates without a `type`; one with a type arrives under that name, as text too.
    on("message", (data, event) => show(`${event.lastEventId}: ${data}`)),
    on("mercure", (s) =>
      show(`${s.subscriber} ${s.active ? "subscribed to" : "left"} ${s.match_type ?? "topic"} ${s.match ?? s.topic} (${s.id}, ${s.type}, ${JSON.stringify(s.payload ?? null)})`)),
    on("reset", (reset) => show(`reset: ${reset.reason} (${reset.oldest ?? "-"} .. ${reset.latest ?? "-"})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
