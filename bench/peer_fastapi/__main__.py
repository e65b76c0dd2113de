"""python -m bench.peer_fastapi --port P --base-url http://127.0.0.1:M/v1 (loopback only)."""

from __future__ import annotations

import argparse

from .app import create_app, loopback_url


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument(
        "--base-url", required=True, help="the mock model, e.g. http://127.0.0.1:8901/v1"
    )
    p.add_argument("--api", choices=["responses", "chat_completions"], default="responses")
    p.add_argument("--model", default="gpt-4.1-mini")
    p.add_argument("--auth-token", default=None, help='require "Authorization: Bearer <token>"')
    a = p.parse_args(argv)
    loopback_url(f"http://{a.host}/")
    import uvicorn

    uvicorn.run(
        create_app(a.base_url, api=a.api, model=a.model, auth_token=a.auth_token),
        host=a.host,
        port=a.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
