// A typed use of every event sse-notify sends: `tsc --strict` compiles it in scripts/test
// against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { notifyEvents, type Level, type NotifyEvents } from "./events";

const badge: Record<Level, string> = { info: "i", warning: "!", error: "x" };

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<NotifyEvents>(source, notifyEvents);
  const stops = [
    on("notification", (n) =>
      show(`[${badge[n.level]}] ${n.id} ${n.at} ${n.title}: ${n.message} (${n.user ?? "everyone"})`)),
    on("session-expired", (session) =>
      show(`session of ${session.user ?? "nobody"} ended at ${session.exp ?? "-"}`)),
    on("reset", (reset) => show(`reset: ${reset.reason} (${reset.oldest ?? "-"} .. ${reset.latest ?? "-"})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
