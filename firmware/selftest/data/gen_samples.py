#!/usr/bin/env python3
"""SHA-256 of the Clear Key session's two ciphertext samples, encrypted with `openssl enc`.

The firmware images encrypt these samples with RustCrypto (firmware/selftest/src/session.rs)
and pin these digests, so their reference encryptor is itself checked against OpenSSL. Only the byte
selection (which bytes each scheme runs through its cipher, ISO/IEC 23001-7 §10.1 and §10.4)
is written here; the cipher is OpenSSL's. Run: python3 data/gen_samples.py
"""
import hashlib
import subprocess


def plaintext(n):
    return bytes((7 * i + 3) % 251 for i in range(n))


def openssl(args, data):
    return subprocess.run(["openssl", "enc", *args, "-nopad"], input=data,
                          capture_output=True, check=True).stdout


def ranges(mapping, n):
    pos, out = 0, []
    for clear, prot in mapping:
        out.append((pos + clear, pos + clear + prot))
        pos += clear + prot
    assert pos == n
    return out


def cenc(key, iv8, mapping, data):
    data = bytearray(data)
    offs = [i for s, e in ranges(mapping, len(data)) for i in range(s, e)]
    ct = openssl(["-aes-128-ctr", "-K", key, "-iv", iv8 + "00" * 8], bytes(data[i] for i in offs))
    for i, b in zip(offs, ct):
        data[i] = b
    return bytes(data)


def cbcs(key, iv, crypt, skip, mapping, data):
    data = bytearray(data)
    for s, e in ranges(mapping, len(data)):
        blocks = [s + 16 * i for i in range((e - s) // 16) if i % (crypt + skip) < crypt]
        offs = [b + j for b in blocks for j in range(16)]
        ct = openssl(["-aes-128-cbc", "-K", key, "-iv", iv], bytes(data[i] for i in offs))
        for i, b in zip(offs, ct):
            data[i] = b
    return bytes(data)


c = cenc("5ce0a1f2873b6d4419e7c2a85f0b3d96", "f0e1d2c3b4a59687", [(5, 300), (20, 675)],
         plaintext(1000))
print("cenc", hashlib.sha256(c).hexdigest())
b = cbcs("c47d2b9e0f6a3815e2b7d940a36c1f58", "a1b2c3d4e5f60718293a4b5c6d7e8f90", 1, 9,
         [(16, 250), (5, 429)], plaintext(700))
print("cbcs", hashlib.sha256(b).hexdigest())
