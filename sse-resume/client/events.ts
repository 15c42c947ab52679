// The events of sse-resume, generated from its GET /openapi.json by scripts/event-types.py:
// do not edit. Its contract test fails when this differs from what the server
// describes; UPDATE_EVENT_TYPES=1 cargo test -p sse-resume openapi_json_describes
// writes it again.

/** The events of `GET /events`: each name, and the type of its `data`. */
export interface ResumeEvents {
  /** The producer's heartbeat. */
  tick: Tick;
  /** Text someone posted (POST /events). */
  note: string;
  /** The replay is over: what follows is live. */
  live: Live;
  /** The stream cannot go on from the id sent back: what it names is gone, or was never issued. */
  reset: Reset;
}

/** How each event's `data` of `GET /events` is read (for `typed-events.ts`). */
export const resumeEvents = {
  tick: "json",
  note: "text",
  live: "json",
  reset: "json",
} as const satisfies Reads<ResumeEvents>;

/** How an event's `data` is read: parsed as JSON, or the text as it is. */
export type Reads<Events> = { [Name in keyof Events]: "json" | "text" };

/** The `data` of `event: tick`. */
export interface Tick {
  /** When it was made (RFC 3339, milliseconds, UTC). */
  at: string;
  /** Counts ticks (1, 2, ...), so a client can see gaps. */
  seq: number;
}

/** The `data` of `event: live`, sent once the replay is over. */
export interface Live {
  /**
   * The id the live events follow: the last event replayed, or, when none was, the
   * newest when the stream started (`null`: there was none yet).
   */
  after?: string | null;
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
