<?php
// Symfony's Mercure component (Debian's php-symfony-mercure) and its HTTP client's
// EventSourceHttpClient, as a Symfony app uses them, against a running hub. Run by
// tests/clients.rs:
//
//   php symfony.php HUB_URL QUERY SUBSCRIBER_TOKEN PUBLISHER_TOKEN TOPIC
//
// Subscribes (QUERY, the token as a bearer header), and once the stream's headers are
// in, publishes a public then a private update to TOPIC with Hub::publish. Prints one
// JSON line per step: {"published": ID} for each publish, {"received": {"id", "data"}}
// for each event the stream carries, then exits once both came back (1 on a timeout).

declare(strict_types=1);

require_once 'Symfony/Component/Mercure/autoload.php';
require_once 'Symfony/Component/HttpClient/autoload.php';

use Symfony\Component\HttpClient\Chunk\ServerSentEvent;
use Symfony\Component\HttpClient\EventSourceHttpClient;
use Symfony\Component\HttpClient\HttpClient;
use Symfony\Component\Mercure\Hub;
use Symfony\Component\Mercure\Jwt\StaticTokenProvider;
use Symfony\Component\Mercure\Update;

[, $hubUrl, $query, $subscriberToken, $publisherToken, $topic] = $argv;

$hub = new Hub($hubUrl, new StaticTokenProvider($publisherToken));
$client = new EventSourceHttpClient(HttpClient::create(), 10);
$source = $client->connect($hubUrl.'?'.$query, [
    'headers' => ['Authorization' => 'Bearer '.$subscriberToken],
]);

$say = static function (array $line): void {
    echo json_encode($line, JSON_UNESCAPED_SLASHES), "\n";
};
$received = 0;
foreach ($client->stream($source, 10) as $chunk) {
    if ($chunk->isTimeout()) {
        fwrite(STDERR, "no event for 10 s\n");
        exit(1);
    }
    if ($chunk->isFirst()) {
        // The stream is open: the hub has the subscription.
        $say(['published' => $hub->publish(new Update($topic, 'public from Symfony'))]);
        $say(['published' => $hub->publish(new Update($topic, 'private from Symfony', true))]);
    }
    // (Symfony hands on the stream's first block, `retry:` alone, as an event with no
    // data; a browser dispatches no such event.)
    if ($chunk instanceof ServerSentEvent && 'message' === $chunk->getType() && '' !== $chunk->getData()) {
        $say(['received' => ['id' => $chunk->getId(), 'data' => $chunk->getData()]]);
        if (++$received === 2) {
            exit(0);
        }
    }
}
fwrite(STDERR, "the stream ended\n");
exit(1);
