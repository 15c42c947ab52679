// A typed addEventListener for an SSE stream whose events a generated `events.ts`
// describes (each example's `client/events.ts`, made by scripts/event-types.py from
// the server's GET /openapi.json): each handler gets its event's `data` already read,
// parsed JSON or the text, with the type the server's contract gives it. Copy this
// file and an example's `events.ts` into your client.
//
//   import { listen } from "./typed-events";
//   import { chatEvents, type ChatEvents } from "./events";
//
//   const on = listen<ChatEvents>(new EventSource("/chat/events?name=ada"), chatEvents);
//   on("message", (message) => console.log(message.from.name, message.text));
//   on("mesage", ...);          // a compile error: no such event
//   on("message", (m) => m.txt); // a compile error: no such field

/** How each event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/** What delivers named events: an `EventSource`, or the pages' `sharedEventSource`. */
export interface NamedEvents {
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  removeEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
}

/** A handler of one event: its `data` as its type, and the event (`lastEventId`, ...). */
export type Handler<Data> = (data: Data, event: MessageEvent<string>) => void;

/**
 * `on(name, handler)` for the events of `source`: listens for `name` (unnamed events
 * are `message`), reads each one's `data` as `reads` says and hands it to `handler`
 * with the type `Events` gives it. Returns what stops listening.
 */
export function listen<Events>(source: NamedEvents, reads: Reads<Events>) {
  return function on<Name extends keyof Events & string>(
    name: Name,
    handler: Handler<Events[Name]>,
  ): () => void {
    const listener = (event: MessageEvent<string>) => {
      const data: unknown = reads[name] === "json" ? JSON.parse(event.data) : event.data;
      // The server's contract says what the data is (its test checks real events).
      handler(data as Events[Name], event);
    };
    source.addEventListener(name, listener);
    return () => source.removeEventListener(name, listener);
  };
}
