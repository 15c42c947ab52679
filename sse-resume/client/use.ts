// A typed use of every event sse-resume sends: `tsc --strict` compiles it in scripts/test
// against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { resumeEvents, type ResumeEvents } from "./events";

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<ResumeEvents>(source, resumeEvents);
  const stops = [
    on("tick", (tick, event) => show(`${event.lastEventId}: tick ${tick.seq} at ${tick.at}`)),
    on("note", (text, event) => show(`${event.lastEventId}: ${text}`)),
    on("live", (live) => show(`live after ${live.after ?? "nothing"}`)),
    on("reset", (reset) => show(`reset: ${reset.reason} (${reset.oldest ?? "-"} .. ${reset.latest ?? "-"})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
