"""Schemathesis hooks: authenticate as a dedicated user, re-registering it when a test case has
removed the account (DELETE /users/me is one of the operations under test)."""

import os

import requests
import schemathesis

BASE_URL = os.environ["API_URL"]
CREDENTIALS = {
    "username": "schemathesis",
    "email": "schemathesis@example.com",
    "password": "schemathesis-password",
}


@schemathesis.auth()
class BearerToken:
    def get(self, case, context):
        login = {"username": CREDENTIALS["username"], "password": CREDENTIALS["password"]}
        response = requests.post(f"{BASE_URL}/auth/login", json=login, timeout=30)
        if response.status_code == 401:
            response = requests.post(f"{BASE_URL}/auth/register", json=CREDENTIALS, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
