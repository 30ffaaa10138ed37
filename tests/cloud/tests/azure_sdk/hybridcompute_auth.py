"""A token credential for the Azure SDK that posts the client-credentials
grant to tether-cloud's Entra-shaped token endpoint itself, so the ARM
scripts depend on nothing but azure-core's credential protocol."""

import json
import os
import ssl
import time
import urllib.parse
import urllib.request

from azure.core.credentials import AccessToken

URL = os.environ["TC_URL"]
CA = os.environ["TC_CA"]
TENANT = os.environ["TC_TENANT"]


class ClientSecret:
    def get_token(self, *scopes, **kwargs):
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": os.environ["TC_CLIENT_ID"],
                "client_secret": os.environ["TC_CLIENT_SECRET"],
                "scope": " ".join(scopes),
            }
        ).encode()
        request = urllib.request.Request(f"{URL}/{TENANT}/oauth2/v2.0/token", data=form)
        context = ssl.create_default_context(cafile=CA)
        with urllib.request.urlopen(request, context=context) as response:
            body = json.load(response)
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))
