"""azure-identity's CertificateCredential (MSAL underneath), unmodified,
signs in to tether-cloud with the RSA certificate `tether-cloud admin`
made: from its PEM file and from a PFX that Python's cryptography builds
from it (so cryptography must read the PKCS#8 key tether-cloud wrote).
Each token then lists machines with azure-mgmt-hybridcompute.
Prints one JSON object of what it saw."""

import json
import os
import tempfile

from azure.identity import CertificateCredential
from azure.mgmt.hybridcompute import HybridComputeManagementClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

URL = os.environ["TC_URL"]
TENANT = os.environ["TC_TENANT"]
CLIENT = os.environ["TC_CERT_CLIENT_ID"]
PEM = os.environ["TC_CERT_PEM"]

with open(PEM, "rb") as f:
    bundle = f.read()
key = serialization.load_pem_private_key(bundle, password=None)
cert = x509.load_pem_x509_certificate(bundle)
pfx = os.path.join(tempfile.mkdtemp(), "sp.pfx")
with open(pfx, "wb") as f:
    f.write(
        pkcs12.serialize_key_and_certificates(
            b"sp", key, cert, None, serialization.BestAvailableEncryption(b"pfx password")
        )
    )


def machines(credential):
    arm = HybridComputeManagementClient(
        credential,
        os.environ["TC_SUBSCRIPTION"],
        base_url=URL,
        credential_scopes=[f"{URL}/.default"],
    )
    return sorted(m.name for m in arm.machines.list_by_subscription())


seen = {"keyBits": key.key_size, "keyType": type(key).__name__}
for name, credential in [
    (
        "pem",
        CertificateCredential(TENANT, CLIENT, certificate_path=PEM, authority=URL, disable_instance_discovery=True),
    ),
    (
        "pfx",
        CertificateCredential(
            TENANT, CLIENT, certificate_path=pfx, password=b"pfx password", authority=URL, disable_instance_discovery=True
        ),
    ),
]:
    token = credential.get_token(f"{URL}/.default")
    seen[name] = {"token": token.token, "machines": machines(credential)}
print(json.dumps(seen))
