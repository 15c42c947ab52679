// The events of sse-topics, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-topics openapi_json_describes
// writes it again.

/** The events of `GET /.well-known/mercure`: each name, and the type of its `data`. */
export interface TopicsEvents {
  /**
   * An update: `event` is its `type` (none: unnamed), `data` its data, as published.
   * Also every other event name but mercure, reset, with the same data.
   */
  message: string;
  /** With --subscriptions, to tokens that may read it: a subscription began (`active: true`) or ended. */
  mercure: Subscription;
  /** The id sent back names no retained update: everything retained follows. */
  reset: Reset;
}

/** How each event's `data` of `GET /.well-known/mercure` is read (for `typed-events.ts`). */
export const topicsEvents = {
  message: "text",
  mercure: "json",
  reset: "json",
} as const satisfies Reads<TopicsEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/**
 * A subscription, as the subscriptions API lists it and its `mercure` announcements
 * carry it (Mercure's Active Subscriptions). The registry keeps it as JSON.
 */
export interface Subscription {
  /** Whether the subscription is open (an announcement of its end says `false`). */
  active: boolean;
  /**
   * Its path under the hub: `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`
   * (0.x: `.../subscriptions/{topic}/{subscriber}`).
   */
  id: string;
  /** The matcher's pattern (absent for a Mercure 0.x `topic=` subscription). */
  match?: string | null;
  /** `exact` or `urlpattern` (absent for a Mercure 0.x `topic=` subscription). */
  match_type?: string | null;
  /** What the subscriber's token says about it (`mercure.payload`), if anything. */
  payload?: unknown;
  /** The subscriber: a `urn:uuid:` the hub chose. */
  subscriber: string;
  /** A Mercure 0.x subscription's `topic=` selector (`--protocol-compat 8`). */
  topic?: string | null;
  /** Always `subscription`. */
  type: string;
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
