// The events of sse-counter, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-counter openapi_json_describes
// writes it again.

/** The events of `GET /events`: each name, and the type of its `data`. */
export interface CounterEvents {
  /** The next number, from 1 (or the id sent back + 1). */
  message: string;
  /** The id sent back was no count: counting starts again from 1. */
  reset: Reset;
}

/** How each event's `data` of `GET /events` is read (for `typed-events.ts`). */
export const counterEvents = {
  message: "text",
  reset: "json",
} as const satisfies Reads<CounterEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/**
 * The `data` of `event: reset`: why, and the oldest and latest ids the server holds
 * (`null` where it holds none).
 */
export interface Reset {
  /** The latest event id. */
  latest?: string | null;
  /** The oldest event id still retained. */
  oldest?: string | null;
  /** Why the stream could not go on from the client's id. */
  reason: ResetReason;
}

/** Why a stream starts with `event: reset` instead of resuming. */
export type ResetReason = "history-gap" | "unknown-id" | "invalid-id" | "lagged";
