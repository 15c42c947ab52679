// An SSE client from the Go module proxy, github.com/r3labs/sse/v2, as a Go service
// would subscribe: it reconnects by itself after an error (exponential back-off),
// sending Last-Event-ID. A stream the server ends cleanly (a restart, a drain) makes
// SubscribeRaw return nil instead, so, as a service must, this subscribes again: the
// client keeps LastEventID, so it resumes. Built by scripts/test (into target/go-sse-client, GO_SSE_CLIENT);
// run by sse-counter's and sse-topics' tests/clients.rs:
//
//	go-sse-client URL COUNT [TOKEN]
//
// Prints one JSON line per event that has data, {"type", "id", "data"}, and exits
// after COUNT of them; TOKEN, when given, is sent as a bearer token.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	sse "github.com/r3labs/sse/v2"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go-sse-client URL COUNT [TOKEN]")
		os.Exit(2)
	}
	count, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "COUNT:", err)
		os.Exit(2)
	}
	client := sse.NewClient(os.Args[1])
	if len(os.Args) > 3 {
		client.Headers["Authorization"] = "Bearer " + os.Args[3]
	}
	out := json.NewEncoder(os.Stdout)
	seen := 0
	done := make(chan struct{})
	handle := func(event *sse.Event) {
		if len(event.Data) == 0 || seen == count {
			return // `retry:` alone, a comment
		}
		kind := string(event.Event)
		if kind == "" {
			kind = "message"
		}
		line := map[string]string{"type": kind, "id": string(event.ID), "data": string(event.Data)}
		if err := out.Encode(line); err != nil {
			os.Exit(1)
		}
		seen++
		if seen == count {
			close(done)
		}
	}
	go func() {
		for {
			if err := client.SubscribeRaw(handle); err != nil {
				fmt.Fprintln(os.Stderr, "subscription failed:", err)
				os.Exit(1)
			}
			time.Sleep(100 * time.Millisecond) // ended cleanly: subscribe again
		}
	}()
	<-done
}
