"""Seeds a running EchoForge server for the API suites: signs a user up (verifying through the
outbox), creates an agent and a knowledge base, a workspace key with every permission and an
agent key. Prints the result as JSON. Usage: seed.py BASE_URL DATA_DIR EMAIL"""
import email
import glob
import json
import re
import sys
import time
import urllib.request

base, data_dir, address = sys.argv[1], sys.argv[2], sys.argv[3]


def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data, timeout=30) as r:
        return json.loads(r.read() or b"null")


password = "Seed1password"
call("POST", "/api/v1/auth/register",
     {"email": address, "password": password, "name": "Seed", "company_name": "Seed Co"})
token = None
for _ in range(200):
    for path in glob.glob(f"{data_dir}/outbox/*.eml"):
        msg = email.message_from_binary_file(open(path, "rb"))
        if address in (msg["To"] or ""):
            body = msg.get_payload(decode=True) or msg.get_payload(0).get_payload(decode=True)
            m = re.search(r"Verification token: ([A-Za-z0-9_-]+)", body.decode())
            if m:
                token = m.group(1)
    if token:
        break
    time.sleep(0.05)
call("POST", "/api/v1/auth/verify-email", {"token": token})
access = call("POST", "/api/v1/auth/login", {"email": address, "password": password})["access_token"]
agent = call("POST", "/api/v1/agents",
             {"display_name": "Sam", "template": "generic-chat"}, access)
kb = call("POST", "/api/v1/knowledge-bases", {"name": "Handbook"}, access)
ws_key = call("POST", "/api/v1/api-keys",
              {"name": "all", "permissions": ["read", "write", "chat", "upload", "config", "admin"]}, access)
agent_key = call("POST", f"/api/v1/agents/{agent['id']}/keys",
                 {"name": "agent", "permissions": ["chat", "upload", "config"]}, access)
print(json.dumps({"access_token": access, "agent_id": agent["id"], "kb_id": kb["id"],
                  "workspace_key": ws_key["secret"], "agent_key": agent_key["secret"]}))
