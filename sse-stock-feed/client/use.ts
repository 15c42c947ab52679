// A typed use of every event sse-stock-feed sends: `tsc --strict` compiles it in
// scripts/test against `events.ts`, so an event or field renamed in the server fails it.
import { listen } from "../../typescript/typed-events";
import { stockFeedEvents, type Quote, type StockFeedEvents } from "./events";

const quoted = (quote: Quote) =>
  `${quote.symbol} ${quote.price.toFixed(2)} (${quote.change >= 0 ? "+" : ""}${quote.change.toFixed(2)}) at ${quote.at}`;

export function follow(source: EventSource, show: (line: string) => void): () => void {
  const on = listen<StockFeedEvents>(source, stockFeedEvents);
  const stops = [
    on("snapshot", (snapshot) => snapshot.prices.forEach((quote) => show(quoted(quote)))),
    on("price", (quote) => show(quoted(quote))),
    on("reset", (reset) => show(`reset: ${reset.reason} (${reset.oldest ?? "-"} .. ${reset.latest ?? "-"})`)),
  ];
  return () => stops.forEach((stop) => stop());
}
