// A typed addEventListener for an SSE stream whose events a generated `events.ts`
// describes (each example's `client/events.ts`, made by scripts/event-types.py from
// the server's GET /openapi.json): each handler gets its event's `data` already read,
// parsed JSON or the text, typed as the server's contract says. The types are the
// contract's word, not a check at run time (the examples' contract tests check that
// the servers keep to it); `data` that is not JSON where JSON is due goes to
// `invalid`, not to the handler. Copy this file and an example's `events.ts` into
// your client.
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

/**
 * What delivers named events: an `EventSource`, or the pages' `sharedEventSource`
 * (which delivers only the names it was opened with: give it `Object.keys(chatEvents)`).
 */
export interface NamedEvents {
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  removeEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
}

/** A handler of one event: its `data` as its type, and the event (`lastEventId`, ...). */
export type Handler<Data> = (data: Data, event: MessageEvent<string>) => void;

/**
 * `on(name, handler)` for the events of `source`: listens for `name` (unnamed events
 * are `message`), reads each one's `data` as `reads` says and hands it to `handler`
 * with the type `Events` gives it; `data` that should be JSON and is not goes to
 * `invalid` (by default, a console warning). `on` returns what stops listening.
 */
export function listen<Events>(
  source: NamedEvents,
  reads: Reads<Events>,
  invalid: (event: MessageEvent<string>, error: unknown) => void = (event, error) =>
    console.warn(`event ${event.type}: its data is not JSON`, error),
) {
  return function on<Name extends keyof Events & string>(
    name: Name,
    handler: Handler<Events[Name]>,
  ): () => void {
    const listener = (event: MessageEvent<string>) => {
      let data: unknown = event.data;
      if (reads[name] === "json") {
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          invalid(event, error);
          return;
        }
      }
      // The server's contract says what the data is (its test checks real events).
      handler(data as Events[Name], event);
    };
    source.addEventListener(name, listener);
    return () => source.removeEventListener(name, listener);
  };
}
