// A typed use of every event sse-chat sends: `tsc --strict` compiles it in scripts/test
// against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { chatEvents, type ChatEvents, type User } from "./events";

const named = (user: User) => `${user.name} (${user.id})`;

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<ChatEvents>(source, chatEvents);
  const stops = [
    on("welcome", (welcome) => {
      const online = welcome.online.map(named).join(", ");
      show(`you are ${named(welcome.user)} (token ${welcome.token.length} chars); online: ${online}`);
    }),
    on("join", (presence) => show(`${named(presence.user)} joined`)),
    on("leave", (presence) => show(`${named(presence.user)} left`)),
    on("message", (message) => show(`${message.id} ${message.at} ${named(message.from)}: ${message.text}`)),
    on("reset", (reset) => show(`reset: ${reset.reason} (${reset.oldest ?? "-"} .. ${reset.latest ?? "-"})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
