"""``python -m stripe_local --port 12111``: run the local Stripe until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from stripe_local.server import DEFAULT_API_KEY, LocalStripe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", action="append", dest="api_keys",
                        help=f"accepted secret key (repeatable; default {DEFAULT_API_KEY})")
    parser.add_argument("--webhook-url", help="register a webhook endpoint at start")
    parser.add_argument("--webhook-secret", help="its signing secret (default: generated)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    server = LocalStripe(args.host, args.port, api_keys=tuple(args.api_keys or [DEFAULT_API_KEY]),
                         verbose=args.verbose)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly when terminated
    url = server.start()
    print(f"Local Stripe listening on {url}  (API keys: {', '.join(sorted(server.app.api_keys))})")
    if args.webhook_url:
        endpoint = server.control.webhook_endpoint_create(args.webhook_url,
                                                          secret=args.webhook_secret)
        print(f"Webhooks -> {endpoint['url']}  secret {endpoint['secret']}")
    print('Point the SDK at it: stripe.StripeClient(key, base_addresses={"api": url, '
          '"connect": url, "files": url})')
    sys.stdout.flush()
    try:
        server.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
