"""The prototype's `POST /exclude`, as it was published: a benchmark peer.

NEVER DEPLOY THIS. Its fallback to a plain `user_id` cookie lets anyone act
as anyone, exactly as the prototype did. It exists so that `scripts/bench`
can measure sponsorgate against what it replaces, in the same run, on the
same machine, under gunicorn with two sync workers.

What it does per request, like the prototype: takes `id` from the JSON body,
the user id from the Flask session or else the `user_id` cookie, prints the
request JSON and logs a line (to a file and to stdout), `SADD
user:<uid>:mnodes <id>` with a module-level redis-py client, and answers
`{"message": "Finished <id> and <uid>"}`. Its read side is `SMEMBERS`.
"""

import logging
import os

import redis
from flask import Flask, jsonify, request, session

app = Flask(__name__)
app.secret_key = os.environ.get("PEER_SECRET_KEY", "bench-only-not-a-secret")

r = redis.Redis(host="127.0.0.1", port=int(os.environ["PEER_REDIS_PORT"]))

logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(message)s",
    handlers=[
        logging.FileHandler(os.environ.get("PEER_LOG_FILE", "prototype.log")),
        logging.StreamHandler(),
    ],
)
log = logging.getLogger("prototype")


def current_user():
    return session.get("user_id") or request.cookies.get("user_id")


@app.route("/exclude", methods=["POST"])
def exclude():
    data = request.get_json()
    print(data)
    node_id = data["id"]
    uid = current_user()
    log.info("exclude %s for user %s", node_id, uid)
    r.sadd(f"user:{uid}:mnodes", node_id)
    return jsonify({"message": f"Finished {node_id} and {uid}"})


@app.route("/exclusions", methods=["GET"])
def exclusions():
    uid = current_user()
    return jsonify({"ids": sorted(m.decode() for m in r.smembers(f"user:{uid}:mnodes"))})
