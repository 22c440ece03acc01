"""X-Wing recipient keys (``mlkem768-x25519``, docs/format.md §10.2).

The key is the 32-byte X-Wing seed of draft-connolly-cfrg-xwing-kem-08; its
PKCS#8 and SPKI use the draft's OID 1.3.6.1.4.1.62253.25722 with no
parameters. The vectors below are the draft's: test vector 1 (Appendix C) and
the key encodings (Appendix D), as OpenJDK's X-Wing tests carry them
(test/jdk/com/sun/crypto/provider/XWing/Conformance.java, KeyEncodings.java).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from _cli import aoe
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from aoe_pack._crypto import _der, wrap
from aoe_pack._crypto import asymmetric as _keys
from aoe_pack._crypto.asymmetric import KeyKind
from aoe_pack.errors import DecryptionError, KeyFormatError, KeyPasswordError
from aoe_pack.keys import load_decryption_key

REPO = Path(__file__).resolve().parents[2]
XWING_LABEL = b"\\.//^\\"  # 5c2e2f2f5e5c
PKCS8_PREFIX = bytes.fromhex("3034020100300d060b2b0601040183e62d81c87a0420")
SPKI_PREFIX = bytes.fromhex("308204d4300d060b2b0601040183e62d81c87a038204c100")
ORIGIN = "k.key"

TV1_SEED = bytes.fromhex("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")

TV1_PK = bytes.fromhex(
    "e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3da5fa1a92c49f2551"
    "3e0fd30d6b1611c9ab9635d7086727a4b7d21d34244e66969cf15b3b2a785329f61b096b277ea037383479a6"
    "b556de7231fe4b7fa9c9ac24c0699a0018a5253401bacfa905ca816573e56a2d2e067e9b7287533ba13a937d"
    "edb31fa44baced40769923610034ae31e619a170245199b3c5c39864859fe1b4c9717a07c30495bdfb98a0a0"
    "02ccf56c1286cef5041dede3c44cf16bf562c7448518026b3d8b9940680abd38a1575fd27b58da063bfac32c"
    "39c30869374c05c1aeb1898b6b303cc68be455346ee0af699636224a148ca2aea10463111c709f69b69c70ce"
    "8538746698c4c60a9aef0030c7924ceec42a5d36816f545eae13293460b3acb37ea0e13d70e4aa78686da398"
    "a8397c08eaf96882113fe4f7bad4da40b0501e1c753efe73053c87014e8661c33099afe8bede414a5b1aa27d"
    "8392b3e131e9a70c1055878240cad0f40d5fe3cdf85236ead97e2a97448363b2808caafd516cd25052c5c362"
    "543c2517e4acd0e60ec07163009b6425fc32277acee71c24bab53ed9f29e74c66a0a3564955998d76b96a9a8"
    "b50d1635a4d7a67eb42df5644d330457293a8042f53cc7a69288f17ed55827e82b28e82665a86a14fbd96645"
    "eca8172c044f83bc0d8c0b4c8626985631ca87af829068f1358963cb333664ca482763ba3b3bb208577f9ba6"
    "ac62c25f76592743b64be519317714cb4102cb7b2f9a25b2b4f0615de31decd9ca55026d6da0b65111b16fe5"
    "2feed8a487e144462a6dba93728f500b6ffc49e515569ef25fed17aff520507368253525860f58be3be61c96"
    "4604a6ac814e6935596402a520a4670b3d284318866593d15a4bb01c35e3e587ee0c67d2880d6f2407fb7a70"
    "712b838deb96c5d7bf2b44bcf6038ccbe33fbcf51a54a584fe90083c91c7a6d43d4fb15f48c60c2fd66e0a8a"
    "ad4ad64e5c42bb8877c0ebec2b5e387c8a988fdc23beb9e16c8757781e0a1499c61e138c21f216c29d076979"
    "871caa6942bafc090544bee99b54b16cb9a9a364d6246d9f42cce53c66b59c45c8f9ae9299a75d15180c3c95"
    "2151a91b7a10772429dc4cbae6fcc622fa8018c63439f890630b9928db6bb7f9438ae4065ed34d73d486f3f5"
    "2f90f0807dc88dfdd8c728e954f1ac35c06c000ce41a0582580e3bb57b672972890ac5e7988e7850657116f1"
    "b57d0809aaedec0bede1ae148148311c6f7e317346e5189fb8cd635b986f8c0bdd27641c584b778b3a911a80"
    "be1c9692ab8e1bbb12839573cce19df183b45835bbb55052f9fc66a1678ef2a36dea78411e6c8d60501b4e60"
    "592d13698a943b509185db912e2ea10be06171236b327c71716094c964a68b03377f513a05bcd99c1f346583"
    "bb052977a10a12adfc758034e5617da4c1276585e5774e1f3b9978b09d0e9c44d3bc86151c43aad185712717"
    "340223ac381d21150a04294e97bb13bbda21b5a182b6da969e19a7fd072737fa8e880a53c2428e3d049b7d21"
    "97405296ddb361912a7bcf4827ced611d0c7a7da104dde4322095339f64a61d5bb108ff0bf4d780cae509fb2"
    "2c256914193ff7349042581237d522828824ee3bdfd07fb03f1f942d2ea179fe722f06cc03de5b69859edb06"
    "eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"
)

TV1_ESEED = bytes.fromhex(
    "3cb1eea988004b93103cfb0aeefd2a686e01fa4a58e8a3639ca8a1e3f9ae57e235b8cc873c23dc62b8d26016"
    "9afa2f75ab916a58d974918835d25e6a435085b2"
)

TV1_CT = bytes.fromhex(
    "b83aa828d4d62b9a83ceffe1d3d3bb1ef31264643c070c5798927e41fb07914a273f8f96e7826cd5375a283d"
    "7da885304c5de0516a0f0654243dc5b97f8bfeb831f68251219aabdd723bc6512041acbaef8af44265524942"
    "b902e68ffd23221cda70b1b55d776a92d1143ea3a0c475f63ee6890157c7116dae3f62bf72f60acd2bb8cc31"
    "ce2ba0de364f52b8ed38c79d719715963a5dd3842d8e8b43ab704e4759b5327bf027c63c8fa857c4908d5a8a"
    "7b88ac7f2be394d93c3706ddd4e698cc6ce370101f4d0213254238b4a2e8821b6e414a1cf20f6c1244b69904"
    "6f5a01caa0a1a55516300b40d2048c77cc73afba79afeea9d2c0118bdf2adb8870dc328c5516cc45b1a20581"
    "41039e2c90a110a9e16b318dfb53bd49a126d6b73f215787517b8917cc01cabd107d06859854ee8b4f9861c2"
    "26d3764c87339ab16c3667d2f49384e55456dd40414b70a6af841585f4c90c68725d57704ee8ee7ce6e2f9be"
    "582dbee985e038ffc346ebfb4e22158b6c84374a9ab4a44e1f91de5aac5197f89bc5e5442f51f9a5937b102b"
    "a3beaebf6e1c58380a4a5fedce4a4e5026f88f528f59ffd2db41752b3a3d90efabe463899b7d40870c530c88"
    "41e8712b733668ed033adbfafb2d49d37a44d4064e5863eb0af0a08d47b3cc888373bc05f7a33b841bc2587c"
    "57eb69554e8a3767b7506917b6b70498727f16eac1a36ec8d8cfaf751549f2277db277e8a55a9a5106b23a02"
    "06b4721fa9b3048552c5bd5b594d6e247f38c18c591aea7f56249c72ce7b117afcc3a8621582f9cf71787e18"
    "3dee09367976e98409ad9217a497df888042384d7707a6b78f5f7fb8409e3b535175373461b776002d799cba"
    "d62860be70573ecbe13b246e0da7e93a52168e0fb6a9756b895ef7f0147a0dc81bfa644b088a9228160c0f9a"
    "cf1379a2941cd28c06ebc80e44e17aa2f8177010afd78a97ce0868d1629ebb294c5151812c583daeb8868522"
    "0f4da9118112e07041fcc24d5564a99fdbde28869fe0722387d7a9a4d16e1cc8555917e09944aa5ebaaaec2c"
    "f62693afad42a3f518fce67d273cc6c9fb5472b380e8573ec7de06a3ba2fd5f931d725b493026cb0acbd3fe6"
    "2d00e4c790d965d7a03a3c0b4222ba8c2a9a16e2ac658f572ae0e746eafc4feba023576f08942278a041fb82"
    "a70a595d5bacbf297ce2029898a71e5c3b0d1c6228b485b1ade509b35fbca7eca97b2132e7cb6bc465375146"
    "b7dceac969308ac0c2ac89e7863eb8943015b24314cafb9c7c0e85fe543d56658c213632599efabfc1ec49dd"
    "8c88547bb2cc40c9d38cbd3099b4547840560531d0188cd1e9c23a0ebee0a03d5577d66b1d2bcb4baaf21cc7"
    "fef1e03806ca96299df0dfbc56e1b2b43e4fc20c37f834c4af62127e7dae86c3c25a2f696ac8b589dec71d59"
    "5bfbe94b5ed4bc07d800b330796fda89edb77be0294136139354eb8cd37591578f9c600dd9be8ec6219fdd50"
    "7adf3397ed4d68707b8d13b24ce4cd8fb22851bfe9d632407f31ed6f7cb1600de56f17576740ce2a32fc5145"
    "030145cfb97e63e0e41d354274a079d3e6fb2e15"
)

TV1_SS = bytes.fromhex("d2df0522128f09dd8e2c92b1e905c793d8f57a54c3da25861f10bf4ca613e384")

APPENDIX_D_PKCS8_BASE64 = (
    "MDQCAQAwDQYLKwYBBAGD5i2ByHoEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZ\nGhscHR4f\n"
)

APPENDIX_D_SPKI_BASE64 = (
    "MIIE1DANBgsrBgEEAYPmLYHIegOCBMEAb1QJigoOZBFGYUtpYLpg2GA9YvRH+atJ\n"
    "m0e9aQbMQLBh2GNKPoiQbyhJWOdEHKbHJcu5cJW3ZxpGK2aByeZYC7yNYLFJ+mAm\n"
    "EEOvu6UvIFpgKDhIUVlq3zcavqmNM0c4PSu2c0OPZ4NhK/hwFPe5Gol0AmU0XfZ5\n"
    "NARz0cTBdohuXim48Fi7fHNTFmhs/1w764wmHLAJcKacGvzFS5TLhuHOY7pjbjlc\n"
    "pFEB4hx70EwxPqGa8kFB79KtREFqJbpPZZEO99iAnDCT8EqvAOPNluNcSqPIAsGK\n"
    "1vOdpLS42YyL15Atg6B7pFOWZ0pgJDyrk+gP2bHId3N2qcwNb6EV4mOTgLnGvnhI\n"
    "vRNYjGRwOgU10ZoPgWM6l2oKEFtm7ihdD9JV6CwDMZJfQ4O278dh72CZI1oLmHJj\n"
    "WKqdAbi4llGfkhR0u3wUuyIlK1wvENQSRsmyPnZEhJNn9UGhX2O8koo5u3vHPwe2\n"
    "ZcSWu2VYyPRUiacuxLrNNOnFlMM4cbcj8DSV6ItDkasm5DBD3rYRezkZ5FxMGxar\n"
    "KOR93XI2Y4VHZhkvwYBspwq7eGy9swky5oyKNwvPsHmDoBLDJmuT76YmV/S4ODdM\n"
    "sLuV4OwGVBsHZdmc8VO8a5YTXKeApVs2R3ieMZFeRig8+ce7boRT+2aCEFFB8dwN\n"
    "ANhe7XA7bGyWH3nIRSdrQkiUnAZ4LlE+spkbldlgQuOMvto1JEmytQhOvaUiamIG\n"
    "QAeJEwowlkSYSLYp/upKLCp0PEoN3Jyz89Z2/FY3MbJsShpm3IRZFwBW1XaX8UQ7\n"
    "gamjRBK7e/BfMydXWlkR3TAdYFOGfzwwgHEfG/EVh7C7KYQnayaF53ViEOSz+JVT\n"
    "hCMeVYxvUQyR4PxWtdGIX/KUnpWka8G+4fpx9QJ+EMRDsOkdD9dED0Z6JyISEuiP\n"
    "XGumQpbK4NIHv8YPiMfPtcRaoYOdGMs3xFhD5UJqSpDIArZCj5U8NZxKwGA0UvrA\n"
    "tzYeL9NdzIhakhRdT8oBWPG31wtLzRGOSipBVEON8xDESpobmepBWQcmeoiwYkJB\n"
    "V5wXIvRu1hwuPspUXJlwUXF1OZuADbJdo5WT0GSQ1xQsAOiNLbBH6YmL23rLftkH\n"
    "9uMEFswN5UokLAohJjAvXVTIW8Zqwvg8eXlFtQZ8qkK9LgwZypdQblB6sKXJ9WM3\n"
    "CEmcGfJK7FE705A6XXO27EmR98cuuZHBw3iJgFyx6jigzAIXayfFjWOM5aMmaEV8\n"
    "+bm+AnygIUBXlxcl1UEC6JlnFusq2CNFO2BbhVNwsbIbOTLN7UFgqplzx+uuWsR2\n"
    "TZTPfMlQbwd7rXMBLbtKyBQKOHRkEuszyVFFliBfcHY1hiIX2bYJGMYmjZNEkVuE\n"
    "eiR2waJw8VSlyEI0FlrPyGk5hwLOqemgfnsOmeqb3LeEH+nA+iXIM4CSVho+3dxw\n"
    "AfR4rWV4GmAkqtFl2baXmtrESKRGL1ZGhVJ/diQ0/ppCWoRDe0VzkuyoDJE1BhUe\n"
    "OhMjnzQvynZVtuquhFoiHOs+Z/VjnGGT9v3u9X45m4CLfzqitXQKre2QFj3F13XJ\n"
    "+vfx+9B12rNE6dfRRmRygfu6ezxWyv1YM7epMOxCBufDptd2T+gdeg==\n"
)

# --- helpers -----------------------------------------------------------------------------


def pem_der(pem: bytes) -> bytes:
    lines = pem.strip().split(b"\n")
    return base64.b64decode(b"".join(lines[1:-1]))


def pem(label: str, der: bytes) -> bytes:
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    body = b"".join(b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


def spki_der(key: _keys.PrivateKey | _keys.PublicKey) -> bytes:
    public = key.public if isinstance(key, _keys.PrivateKey) else key
    return pem_der(public.pem)


def halves(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """expandDecapsulationKey written out, independently of aoe_pack."""
    expanded = hashlib.shake_256(seed).digest(96)
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def hpke_key_schedule(shared: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 KeySchedule, mode_base, for KEM 0x647A, HKDF-SHA256, AES-256-GCM."""
    suite = b"HPKE\x64\x7a\x00\x01\x00\x02"

    def extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt or bytes(32), b"HPKE-v1" + suite + label + ikm, "sha256").digest()

    def expand(prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
        msg = n.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info + b"\x01"
        return hmac.new(prk, msg, "sha256").digest()[:n]

    context = b"\x00" + extract(b"", b"psk_id_hash", b"") + extract(b"", b"info_hash", info)
    secret = extract(shared, b"secret", b"")
    return expand(secret, b"key", context, 32), expand(secret, b"base_nonce", context, 12)


# --- draft-08 test vector 1 and Appendix D --------------------------------------------------


def test_vector_1_seed_gives_the_drafts_public_key() -> None:
    key = _keys.xwing_from_seed(TV1_SEED)
    assert key.kind is KeyKind.MLKEM768_X25519
    assert spki_der(key) == SPKI_PREFIX + TV1_PK
    assert key.key_id == hashlib.sha256(SPKI_PREFIX + TV1_PK).hexdigest()
    assert TV1_PK[:16].hex() == "e2236b35a8c24b39b10aa1323a96a919"
    assert TV1_PK[-10:].hex() == "9abac8cd049040ef6534"


def test_vector_1_decapsulation_gives_the_drafts_shared_secret() -> None:
    mk, xk = halves(TV1_SEED)
    ct_m, ct_x = TV1_CT[:1088], TV1_CT[1088:]
    assert (
        x25519.X25519PrivateKey.from_private_bytes(TV1_ESEED[32:]).public_key().public_bytes_raw()
        == ct_x
    )
    ss_m = mk.decapsulate(ct_m)
    ss_x = xk.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    ss = hashlib.sha3_256(ss_m + ss_x + ct_x + TV1_PK[1184:] + XWING_LABEL).digest()
    assert ss == TV1_SS


def test_our_key_opens_hpke_built_on_the_drafts_ciphertext() -> None:
    """HPKE with KEM 0x647A over the draft's ct and ss: our key object must decapsulate it."""
    info = b"aoe-pack/v1 data-key\x00tag\x001.0.0"
    key, nonce = hpke_key_schedule(TV1_SS, info)
    sealed = AESGCM(key).encrypt(nonce, b"D" * 32, b"")
    assert wrap.hpke_unwrap(TV1_CT + sealed, _keys.xwing_from_seed(TV1_SEED), info) == b"D" * 32


def test_appendix_d_key_encodings_byte_for_byte() -> None:
    key = _keys.xwing_from_seed(bytes(range(32)))
    pkcs8 = (
        "-----BEGIN PRIVATE KEY-----\n" + APPENDIX_D_PKCS8_BASE64 + "-----END PRIVATE KEY-----\n"
    )
    spki = "-----BEGIN PUBLIC KEY-----\n" + APPENDIX_D_SPKI_BASE64 + "-----END PUBLIC KEY-----\n"
    assert _keys.private_pem(key, None) == pkcs8.encode()
    assert key.public.pem == spki.encode()


def test_unencrypted_pkcs8_golden_bytes() -> None:
    der = pem_der(_keys.private_pem(_keys.xwing_from_seed(TV1_SEED), None))
    assert der.hex() == (
        "3034"  # SEQUENCE, 52 bytes
        "020100"  # INTEGER 0
        "300d060b2b0601040183e62d81c87a"  # SEQUENCE { OID 1.3.6.1.4.1.62253.25722 }
        "0420"  # OCTET STRING, 32 bytes: the seed itself
        "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
    )


def test_encrypted_pkcs8_layout() -> None:
    """PBES2 / PBKDF2-HMAC-SHA256, 600 000 rounds, 16-byte salt / AES-256-CBC, 16-byte IV."""
    text = _keys.private_pem(_keys.xwing_from_seed(TV1_SEED), b"pw")
    assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    der = pem_der(text)
    salt, iv, sealed = der[35:51], der[85:101], der[103:]
    template = (
        "3081a4"  # EncryptedPrivateKeyInfo, 164 bytes
        "3060"  # encryptionAlgorithm
        "06092a864886f70d01050d"  # PBES2
        "3053"  # PBES2-params
        "3032"  # keyDerivationFunc
        "06092a864886f70d01050c"  # PBKDF2
        "3025"  # PBKDF2-params
        "0410{salt}"  # salt
        "02030927c0"  # iterationCount 600 000
        "300c06082a864886f70d02090500"  # prf hmacWithSHA256, NULL parameters
        "301d"  # encryptionScheme
        "060960864801650304012a"  # aes256-CBC
        "0410{iv}"  # IV
        "0440{sealed}"  # encryptedData: the 54-byte PrivateKeyInfo padded to 64
    )
    assert der.hex() == template.format(salt=salt.hex(), iv=iv.hex(), sealed=sealed.hex())
    again = pem_der(_keys.private_pem(_keys.xwing_from_seed(TV1_SEED), b"pw"))
    assert (again[35:51], again[85:101]) != (salt, iv)  # fresh salt and IV every time


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, b"correct horse"], ids=["plain", "encrypted"])
def test_pem_round_trip(password: bytes | None) -> None:
    key = _keys.generate(KeyKind.MLKEM768_X25519)
    text = _keys.private_pem(key, password)
    loaded = _keys.load_private(text, password, origin=ORIGIN)
    public = _keys.load_public(key.public.pem, origin="k.pub")
    assert loaded.kind is public.kind is KeyKind.MLKEM768_X25519
    assert loaded.key_id == public.key_id == key.key_id
    assert loaded.public.pem == public.pem == key.public.pem
    assert isinstance(loaded._obj, hpke.MLKEM768X25519PrivateKey)
    assert isinstance(public._obj, hpke.MLKEM768X25519PublicKey)
    assert _keys.private_pem(loaded, None) == _keys.private_pem(key, None)
    info = b"aoe-pack/v1 data-key\x00t\x001.0.0"
    assert wrap.hpke_unwrap(wrap.hpke_wrap(b"k" * 32, public, info), loaded, info) == b"k" * 32


def test_key_id_is_sha256_of_the_spki_der() -> None:
    key = _keys.generate(KeyKind.MLKEM768_X25519)
    der = spki_der(key)
    assert len(der) == 1240
    assert der.startswith(SPKI_PREFIX)
    assert key.key_id == hashlib.sha256(der).hexdigest()
    mk, xk = halves(pem_der(_keys.private_pem(key, None))[22:])
    raw = mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
    assert der == SPKI_PREFIX + raw


def test_repr_does_not_show_the_seed() -> None:
    key = _keys.xwing_from_seed(TV1_SEED)
    assert TV1_SEED.hex() not in repr(key)
    assert repr(TV1_SEED) not in repr(key)


def test_prompted_password_flow_of_load_decryption_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOE_PACK_PASSWORD", raising=False)
    key = _keys.xwing_from_seed(TV1_SEED)
    path = tmp_path / "k.key"
    path.write_bytes(_keys.private_pem(key, b"pw"))
    asked: list[str] = []
    loaded = load_decryption_key(str(path), prompt=lambda origin: asked.append(origin) or b"pw")
    assert asked == [str(path)]
    assert loaded.key_id == key.key_id


def test_pbes2_reader_still_loads_other_key_types() -> None:
    """Encrypted PKCS#8 in our PBES2 profile is decrypted here; the inner key may be any type."""
    ed = ed25519.Ed25519PrivateKey.generate()
    info = ed.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    text = pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(info, b"pw"))
    assert _keys.load_private(text, b"pw", origin=ORIGIN).kind is KeyKind.ED25519


# --- passwords -------------------------------------------------------------------------------


def test_wrong_password() -> None:
    text = _keys.private_pem(_keys.xwing_from_seed(TV1_SEED), b"right")
    with pytest.raises(KeyPasswordError) as e:
        _keys.load_private(text, b"wrong", origin=ORIGIN)
    assert e.value.message == "k.key: wrong password for the private key"


def test_flipped_ciphertext_byte_reads_as_wrong_password() -> None:
    der = bytearray(pem_der(_keys.private_pem(_keys.xwing_from_seed(TV1_SEED), b"pw")))
    der[-17] ^= 0x01  # the block before the last: flips the last padding byte, 0x0a → 0x0b
    with pytest.raises(KeyPasswordError) as e:
        _keys.load_private(pem("ENCRYPTED PRIVATE KEY", bytes(der)), b"pw", origin=ORIGIN)
    assert e.value.message == "k.key: wrong password for the private key"


def test_password_given_for_an_unencrypted_key() -> None:
    text = _keys.private_pem(_keys.xwing_from_seed(TV1_SEED), None)
    with pytest.raises(KeyPasswordError) as e:
        _keys.load_private(text, b"pw", origin=ORIGIN)
    assert e.value.message == "k.key: the key is not encrypted but a password was given"
    assert e.value.hint == "unset AOE_PACK_PASSWORD for this key"


def test_encrypted_key_without_a_password() -> None:
    text = _keys.private_pem(_keys.xwing_from_seed(TV1_SEED), b"pw")
    with pytest.raises(KeyPasswordError) as e:
        _keys.load_private(text, None, origin=ORIGIN)
    assert e.value.message == "k.key: the private key is encrypted"
    assert e.value.hint == "set AOE_PACK_PASSWORD or run in a terminal to be prompted"


# --- broken private keys: one per attack, each with its exact error ------------------------

XWING_ALG = _der.sequence(_keys.XWING_OID)
GOOD = PKCS8_PREFIX + TV1_SEED
NOT_XWING = "k.key: not a valid X-Wing private key"


def pkcs8(
    *,
    version: bytes = b"\x02\x01\x00",
    alg: bytes = XWING_ALG,
    key: bytes = TV1_SEED,
    extra: bytes = b"",
) -> bytes:
    return _der.sequence(version, alg, _der.octet_string(key), extra)


BROKEN_PRIVATE = {
    "trailing-byte": (GOOD + b"\x00", "1 extra byte after the DER value"),
    "outer-length-too-long": (
        b"\x30\x35" + GOOD[2:],
        "SEQUENCE at byte 0 runs past the end of its container",
    ),
    "outer-length-too-short": (b"\x30\x33" + GOOD[2:], "1 extra byte after the DER value"),
    "long-form-short-length": (
        b"\x30\x81\x34" + GOOD[2:],
        "length at byte 0 is not in its shortest form (not DER)",
    ),
    "indefinite-length": (
        b"\x30\x80" + GOOD[2:] + b"\x00\x00",
        "indefinite length at byte 0 (BER, not DER)",
    ),
    "truncated": (GOOD[:-1], "SEQUENCE at byte 0 runs past the end of its container"),
    "seed-length-past-its-sequence": (
        GOOD[:21] + b"\x21" + GOOD[22:],
        "OCTET STRING at byte 20 runs past the end of its container",
    ),
    "version-1": (
        pkcs8(version=b"\x02\x01\x01"),
        "PKCS#8 version must be 0 (no attributes or public key)",
    ),
    "non-minimal-version": (
        pkcs8(version=b"\x02\x02\x00\x00"),
        "INTEGER is not in its shortest form (not DER)",
    ),
    "negative-version": (pkcs8(version=b"\x02\x01\xff"), "INTEGER is empty or negative"),
    "public-key-field": (
        pkcs8(extra=b"\x81\x02\x00\x00"),
        "SEQUENCE has 4 elements, expected 3",
    ),
    "null-parameters": (
        pkcs8(alg=_der.sequence(_keys.XWING_OID, _der.NULL_VALUE)),
        "the algorithm must be 1.3.6.1.4.1.62253.25722 with no parameters; found "
        "AlgorithmIdentifier 300f060b2b0601040183e62d81c87a0500",
    ),
    "key-not-an-octet-string": (
        _der.sequence(b"\x02\x01\x00", XWING_ALG, _der.bit_string(TV1_SEED)),
        "expected OCTET STRING, found BIT STRING",
    ),
    "seed-31-bytes": (pkcs8(key=TV1_SEED[:31]), "the seed is 31 bytes, expected 32"),
    "seed-33-bytes": (pkcs8(key=TV1_SEED + b"\x00"), "the seed is 33 bytes, expected 32"),
    "expanded-64-byte-mlkem-seed": (pkcs8(key=TV1_SEED * 2), "the seed is 64 bytes, expected 32"),
    "seed-wrapped-in-octet-string": (
        pkcs8(key=_der.octet_string(TV1_SEED)),
        "the seed is 34 bytes, expected 32",
    ),
}


@pytest.mark.parametrize(("der", "why"), BROKEN_PRIVATE.values(), ids=BROKEN_PRIVATE)
def test_broken_private_key_is_refused(der: bytes, why: str) -> None:
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(pem("PRIVATE KEY", der), None, origin=ORIGIN)
    assert e.value.message == f"{NOT_XWING} ({why})"


# After decrypting, a plaintext that is not one DER SEQUENCE is how a wrong password shows.
BROKEN_FRAMING = {
    "trailing-byte",
    "outer-length-too-long",
    "outer-length-too-short",
    "long-form-short-length",
    "indefinite-length",
    "truncated",
}


@pytest.mark.parametrize("case", BROKEN_PRIVATE)
def test_broken_private_key_is_refused_after_decrypting(case: str) -> None:
    der, why = BROKEN_PRIVATE[case]
    text = pem("ENCRYPTED PRIVATE KEY", _der.encrypt_pkcs8(der, b"pw"))
    with pytest.raises(KeyFormatError if case not in BROKEN_FRAMING else KeyPasswordError) as e:
        _keys.load_private(text, b"pw", origin=ORIGIN)
    if case in BROKEN_FRAMING:
        assert e.value.message == "k.key: wrong password for the private key"
    else:
        assert e.value.message == f"{NOT_XWING} ({why})"


def test_other_oid_is_not_read_as_x_wing() -> None:
    other = _der.sequence(_der.oid("1.3.6.1.4.1.62253.25723"))
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(pem("PRIVATE KEY", pkcs8(alg=other)), None, origin=ORIGIN)
    assert e.value.message.startswith("k.key: unsupported key algorithm (")
    assert "1.3.6.1.4.1.62253.25723" in e.value.message


def test_old_two_block_hybrid_file_is_refused() -> None:
    mk, xk = mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    text = b"".join(
        k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()) for k in (mk, xk)
    )
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(text, None, origin=ORIGIN)
    assert e.value.message == "k.key: expected one PEM private key, found 2"


# --- broken encrypted keys (the PBES2 profile is recognised, its values are not) ------------


def epki(
    *,
    salt: bytes = bytes(16),
    iterations: int = 600_000,
    key_length: bytes = b"",
    iv: bytes = bytes(16),
    sealed: bytes = bytes(64),
) -> bytes:
    prf = _der.sequence(_der.OID_HMAC_SHA256, _der.NULL_VALUE)
    params = _der.sequence(_der.octet_string(salt), _der.integer(iterations), key_length, prf)
    kdf = _der.sequence(_der.OID_PBKDF2, params)
    cipher = _der.sequence(_der.OID_AES256_CBC, _der.octet_string(iv))
    scheme = _der.sequence(_der.OID_PBES2, _der.sequence(kdf, cipher))
    return _der.sequence(scheme, _der.octet_string(sealed))


BROKEN_ENCRYPTED = {
    "iteration-count-too-high": (
        epki(iterations=10_000_001),
        "PBKDF2 iteration count 10000001 is outside 1..10000000",
    ),
    "iteration-count-zero": (epki(iterations=0), "PBKDF2 iteration count 0 is outside 1..10000000"),
    "salt-too-short": (epki(salt=bytes(7)), "PBKDF2 salt is 7 bytes; expected 8 to 64"),
    "key-length-16": (epki(key_length=_der.integer(16)), "PBKDF2 keyLength must be 32 for AES-256"),
    "iv-15-bytes": (epki(iv=bytes(15)), "AES-256-CBC IV is 15 bytes; expected 16"),
    "partial-block": (epki(sealed=bytes(63)), "encrypted data is 63 bytes, not whole AES blocks"),
    "empty-ciphertext": (epki(sealed=b""), "encrypted data is 0 bytes, not whole AES blocks"),
}


@pytest.mark.parametrize(("der", "why"), BROKEN_ENCRYPTED.values(), ids=BROKEN_ENCRYPTED)
def test_broken_encrypted_key_is_refused(der: bytes, why: str) -> None:
    with pytest.raises(KeyFormatError) as e:
        _keys.load_private(pem("ENCRYPTED PRIVATE KEY", der), b"pw", origin=ORIGIN)
    assert e.value.message == f"k.key: not a valid encrypted private key ({why})"


# --- broken public keys ---------------------------------------------------------------------

NOT_XWING_PUB = "k.pub: not a valid X-Wing public key"
GOOD_SPKI = SPKI_PREFIX + TV1_PK
BROKEN_PUBLIC = {
    "trailing-byte": (GOOD_SPKI + b"\x00", "1 extra byte after the DER value"),
    "truncated": (GOOD_SPKI[:-1], "SEQUENCE at byte 0 runs past the end of its container"),
    "key-1215-bytes": (
        _der.spki(_keys.XWING_OID, TV1_PK[:-1]),
        "the key is 1215 bytes, expected 1216",
    ),
    "key-1217-bytes": (
        _der.spki(_keys.XWING_OID, TV1_PK + b"\x00"),
        "the key is 1217 bytes, expected 1216",
    ),
    "unused-bits": (
        GOOD_SPKI[:23] + b"\x01" + GOOD_SPKI[24:],
        "the public key BIT STRING must have 0 unused bits",
    ),
    "null-parameters": (
        _der.sequence(_der.sequence(_keys.XWING_OID, _der.NULL_VALUE), _der.bit_string(TV1_PK)),
        "the algorithm must be 1.3.6.1.4.1.62253.25722 with no parameters; found "
        "AlgorithmIdentifier 300f060b2b0601040183e62d81c87a0500",
    ),
    "mlkem-half-out-of-range": (
        _der.spki(_keys.XWING_OID, b"\xff" * 1184 + TV1_PK[1184:]),
        "its ML-KEM-768 half is invalid",
    ),
}


@pytest.mark.parametrize(("der", "why"), BROKEN_PUBLIC.values(), ids=BROKEN_PUBLIC)
def test_broken_public_key_is_refused(der: bytes, why: str) -> None:
    with pytest.raises(KeyFormatError) as e:
        _keys.load_public(pem("PUBLIC KEY", der), origin="k.pub")
    assert e.value.message == f"{NOT_XWING_PUB} ({why})"


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "correct horse"], ids=["plain", "encrypted"])
def test_keygen_build_verify_round_trip(tmp_path: Path, password: str) -> None:
    env = {"AOE_PACK_PASSWORD": password}
    r = aoe("keygen", "--type", "mlkem768-x25519", "--out", tmp_path / "dev", "--json", env=env)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["type"], doc["encrypted"]) == ("mlkem768-x25519", bool(password))
    label = b"ENCRYPTED PRIVATE KEY" if password else b"PRIVATE KEY"
    assert (tmp_path / "dev.key").read_bytes().startswith(b"-----BEGIN " + label + b"-----\n")
    spki = pem_der((tmp_path / "dev.pub").read_bytes())
    assert spki.startswith(SPKI_PREFIX)
    assert doc["keyid"] == hashlib.sha256(spki).hexdigest()

    assert aoe("keygen", "--out", tmp_path / "signer", env={"AOE_PACK_PASSWORD": ""}).exit_code == 0
    bundle = tmp_path / "m.aoe"
    cfg = REPO / "sample_models/mnist/config.json"
    sign = ("--sign-key", tmp_path / "signer.key")
    r = aoe(
        "build",
        cfg,
        "--out",
        bundle,
        *sign,
        "--recipient",
        tmp_path / "dev.pub",
        "--json",
        env={"AOE_PACK_PASSWORD": ""},
    )
    assert r.exit_code == 0, r.output
    verify = ("verify", bundle, "--trusted-key", tmp_path / "signer.pub")
    r = aoe(*verify, "--decryption-key", tmp_path / "dev.key", "--json", env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decrypted"] is True
    if password:
        r = aoe(
            *verify,
            "--decryption-key",
            tmp_path / "dev.key",
            "--json",
            env={"AOE_PACK_PASSWORD": "nope"},
        )
        assert r.exit_code == 1
        assert json.loads(r.stdout)["error"]["code"] == "wrong-password"


@pytest.mark.parametrize("size", [16, 24, 31, 33])
def test_a_sealed_data_key_of_another_length_is_a_decryption_error(size: int) -> None:
    info = wrap.wrap_info("tag", "1.0.0")
    kek = wrap.new_kek()
    with pytest.raises(DecryptionError, match=f"the sealed data key is {size} bytes, not 32"):
        wrap.kek_unwrap(wrap.kek_wrap(b"k" * size, kek, info), kek, info)
    recipient = _keys.generate(KeyKind.X25519)
    with pytest.raises(DecryptionError, match=f"the sealed data key is {size} bytes, not 32"):
        wrap.hpke_unwrap(wrap.hpke_wrap(b"k" * size, recipient.public, info), recipient, info)
