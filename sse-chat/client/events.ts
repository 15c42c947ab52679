// The events of sse-chat, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-chat openapi_json_describes
// writes it again.

/** The events of `GET /chat/events`: each name, and the type of its `data`. */
export interface ChatEvents {
  /** First, on every stream (no id): who you are, your token, who is online. */
  welcome: Welcome;
  /** A member's first stream opened. */
  join: PresenceEvent;
  /** A member's last stream closed. */
  leave: PresenceEvent;
  /** A message, in the one order every member sees. */
  message: Message;
  /** The stream cannot go on from the id sent back: what it names is gone, or was never issued. */
  reset: Reset;
}

/** How each event's `data` of `GET /chat/events` is read (for `typed-events.ts`). */
export const chatEvents = {
  welcome: "json",
  join: "json",
  leave: "json",
  message: "json",
  reset: "json",
} as const satisfies Reads<ChatEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/**
 * The `data` of `event: welcome`, the first event of every stream (built for that
 * stream alone: it holds the member's secret).
 */
export interface Welcome {
  /** Who is online, by name. */
  online: User[];
  /** The member's secret (also set as an HttpOnly cookie): post with it as `Authorization: Bearer`. */
  token: string;
  /** Who this stream's member is. */
  user: User;
}

/**
 * The `data` of `event: join` and `event: leave`: a member's first stream opened, or
 * their last closed.
 */
export interface PresenceEvent {
  user: User;
}

/** The `data` of `event: message`. */
export interface Message {
  /** When the room took it (RFC 3339, milliseconds, UTC). */
  at: string;
  /** Who posted it: the member the token named, never taken from the request. */
  from: User;
  /** The message's event id (also its `id:`). */
  id: string;
  text: string;
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

/** A member as everyone sees them. The id is random and never repeats (names do). */
export interface User {
  /** 16 hex digits, random. */
  id: string;
  /** The display name: 1 to 32 characters, not unique. */
  name: string;
}

/** Why a stream starts with `event: reset` instead of resuming. */
export type ResetReason = "history-gap" | "unknown-id" | "invalid-id" | "lagged";
