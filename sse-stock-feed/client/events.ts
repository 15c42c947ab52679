// The events of sse-stock-feed, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-stock-feed openapi_json_describes
// writes it again.

/** The events of `GET /prices`: each name, and the type of its `data`. */
export interface StockFeedEvents {
  /** First on a new stream, and after a reset (no id): the current prices. */
  snapshot: Snapshot;
  /** One symbol's price after a tick. */
  price: Quote;
  /** The stream cannot go on from the id sent back: a snapshot follows. */
  reset: Reset;
}

/** How each event's `data` of `GET /prices` is read (for `typed-events.ts`). */
export const stockFeedEvents = {
  snapshot: "json",
  price: "json",
  reset: "json",
} as const satisfies Reads<StockFeedEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/** The `data` of `event: snapshot`: the latest price of each symbol asked for. */
export interface Snapshot {
  prices: Quote[];
}

/** One symbol's price after a tick: the `data` of `event: price`. */
export interface Quote {
  /** When the tick was (RFC 3339, milliseconds, UTC). */
  at: string;
  /** Since the previous tick, rounded to cents. */
  change: number;
  /** In currency units, rounded to cents. */
  price: number;
  symbol: string;
}

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
