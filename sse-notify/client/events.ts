// The events of sse-notify, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-notify openapi_json_describes
// writes it again.

/** The events of `GET /notifications/stream`: each name, and the type of its `data`. */
export interface NotifyEvents {
  /** A broadcast, or one for the session's user. */
  notification: NotificationData;
  /** The session ended: the stream ends; a reconnect without a fresh session sees broadcasts only. */
  "session-expired": SessionInfo;
  /** The stream cannot go on from the id sent back: what it names is gone, or was never issued. */
  reset: Reset;
}

/** How each event's `data` of `GET /notifications/stream` is read (for `typed-events.ts`). */
export const notifyEvents = {
  notification: "json",
  "session-expired": "json",
  reset: "json",
} as const satisfies Reads<NotifyEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/** The `data` of `event: notification`, and what `POST /notifications` answers. */
export interface NotificationData {
  /** When it was published (RFC 3339, milliseconds, UTC). */
  at: string;
  /** Its event id: they grow by one, per process. */
  id: string;
  level: Level;
  message: string;
  title: string;
  /** Whom it is for: `null` for everyone. */
  user?: string | null;
}

/**
 * Whose a session is, as `GET /session`, `POST /session` and `event: session-expired`
 * say it.
 */
export interface SessionInfo {
  /** When the session ends, in seconds since the Unix epoch. */
  exp?: number | null;
  /** The user; `null` for no valid session. */
  user?: string | null;
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

/** How loud a notification is. */
export type Level = "info" | "warning" | "error";

/** Why a stream starts with `event: reset` instead of resuming. */
export type ResetReason = "history-gap" | "unknown-id" | "invalid-id" | "lagged";
