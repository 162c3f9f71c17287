#!/usr/bin/env python3
"""Generates hal/tests/data/cenc_cases.txt: expected ciphertexts for the CENC corner cases.

Independent of the Rust code under test: the only primitive used is AES-128 single-block
encryption from Python's `cryptography` package (OpenSSL underneath); the scheme rules of
ISO/IEC 23001-7 are written out below directly from the spec text:
  - cenc (10.1): counter block = IV (8-byte IV: high half, low half 0); the low 64 bits wrap
    mod 2^64 with no carry; one keystream over the concatenated protected bytes of a sample.
  - cens (10.3, 9.6.1): per protected range, crypt:skip over whole blocks (0:0 = all), a short
    last crypt run encrypted, partial block clear; keystream over the encrypted blocks only,
    continuing across ranges.
  - cbcs (10.4): per protected range, constant IV, same pattern rule; one CBC chain over the
    encrypted blocks of the range.
  - cbc1 (10.2): whole blocks of every protected range, one CBC chain across the sample.
Run: python3 gen_cenc_cases.py > cenc_cases.txt
"""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_block(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def ranges(n, ssmap):
    """Protected (start, end) ranges of a sample of n bytes."""
    if not ssmap:
        return [(0, n)] if n else []
    out, pos = [], 0
    for c, p in ssmap:
        pos += c
        if p:
            out.append((pos, pos + p))
        pos += p
    assert pos == n
    return out


def pattern_blocks(start, end, crypt, skip):
    """Start offsets of the encrypted whole blocks of one protected range."""
    nblocks = (end - start) // 16
    if crypt == 0 or skip == 0:
        return [start + 16 * i for i in range(nblocks)]
    return [start + 16 * i for i in range(nblocks) if i % (crypt + skip) < crypt]


def ctr_keystream(key, iv, nbytes):
    hi = iv[:8]
    lo = int.from_bytes(iv[8:], 'big') if len(iv) == 16 else 0
    out = b''
    i = 0
    while len(out) < nbytes:
        out += aes_block(key, hi + ((lo + i) % 2**64).to_bytes(8, 'big'))
        i += 1
    return out[:nbytes]


def cbc_encrypt(key, iv, blocks):
    out, prev = [], iv
    for b in blocks:
        prev = aes_block(key, bytes(x ^ y for x, y in zip(b, prev)))
        out.append(prev)
    return out


def encrypt(scheme, key, iv, pattern, ssmap, pt):
    buf = bytearray(pt)
    crypt, skip = pattern
    rs = ranges(len(pt), ssmap)
    if scheme == 'cenc':
        idx = [i for s, e in rs for i in range(s, e)]
        ks = ctr_keystream(key, iv, len(idx))
        for i, k in zip(idx, ks):
            buf[i] ^= k
    elif scheme == 'cens':
        idx = [b + j for s, e in rs for b in pattern_blocks(s, e, crypt, skip) for j in range(16)]
        ks = ctr_keystream(key, iv, len(idx))
        for i, k in zip(idx, ks):
            buf[i] ^= k
    elif scheme == 'cbcs':
        for s, e in rs:
            offs = pattern_blocks(s, e, crypt, skip)
            for o, c in zip(offs, cbc_encrypt(key, iv, [bytes(buf[o:o + 16]) for o in offs])):
                buf[o:o + 16] = c
    elif scheme == 'cbc1':
        offs = [b for s, e in rs for b in pattern_blocks(s, e, 0, 0)]
        for o, c in zip(offs, cbc_encrypt(key, iv, [bytes(buf[o:o + 16]) for o in offs])):
            buf[o:o + 16] = c
    return bytes(buf)


def seq(n):
    return bytes(i % 256 for i in range(n))


K1 = bytes.fromhex('2b7e151628aed2a6abf7158809cf4f3c')
K2 = bytes.fromhex('8f3c1a07d2e45b6690a1c3e5f7092b4d')
IV8 = bytes.fromhex('0123456789abcdef')
IV16 = bytes.fromhex('f0e1d2c3b4a5968778695a4b3c2d1e0f')
HI = bytes.fromhex('a1a2a3a4a5a6a7a8')
CIV = bytes.fromhex('00112233445566778899aabbccddeeff')

CASES = [
    # name, scheme, key, iv, (crypt, skip), map, plaintext length
    ('cenc_iv8_full_sample_partial_tail', 'cenc', K1, IV8, (0, 0), [], 53),
    ('cenc_iv16_equals_iv8_with_zero_low_half', 'cenc', K1, IV8 + bytes(8), (0, 0), [], 53),
    ('cenc_iv16_full_sample', 'cenc', K2, IV16, (0, 0), [], 64),
    ('cenc_wrap_low_fffffffffffffffe_no_carry', 'cenc', K1, HI + bytes.fromhex('fffffffffffffffe'), (0, 0), [], 80),
    ('cenc_wrap_low_ffffffffffffffff_subsamples', 'cenc', K2, HI + b'\xff' * 8, (0, 0), [(3, 10), (5, 25), (0, 9)], 52),
    ('cenc_iv_all_ff_wrap_no_carry', 'cenc', K1, b'\xff' * 16, (0, 0), [], 48),
    ('cenc_keystream_across_partial_subsamples', 'cenc', K1, IV8, (0, 0), [(5, 13), (7, 20), (0, 1), (3, 30), (2, 0)], 81),
    ('cenc_one_byte_ranges', 'cenc', K2, IV8, (0, 0), [(1, 1)] * 20 + [(0, 17)], 57),
    ('cenc_all_clear_map', 'cenc', K1, IV8, (0, 0), [(10, 0), (6, 0)], 16),
    ('cenc_empty_sample', 'cenc', K1, IV8, (0, 0), [], 0),
    ('cens_1_9_subsamples', 'cens', K1, IV8, (1, 9), [(10, 200), (4, 37), (0, 170)], 421),
    ('cens_0_0_every_block_partial_clear', 'cens', K2, IV16, (0, 0), [(3, 45), (2, 20)], 70),
    ('cens_2_3_short_last_run', 'cens', K1, IV8, (2, 3), [(0, 6 * 16 + 5)], 101),
    ('cens_1_1_wrap_no_carry', 'cens', K2, HI + bytes.fromhex('fffffffffffffffd'), (1, 1), [(1, 100), (2, 64)], 167),
    # Many encrypted blocks per range (more than one keystream buffer of the engines' pattern
    # CTR driver, 32..128 blocks), ranges that are not whole periods (short last runs, partial
    # blocks), the 2^64 wrap inside a batch, one at a multiple of 64 blocks, 8- and 16-byte IVs.
    ('cens_1_9_70_blocks_wrap_iv16', 'cens', K2, HI + (2**64 - 37).to_bytes(8, 'big'), (1, 9),
     [(32, 16 * 700 + 9), (5, 16 * 25)], 32 + 16 * 700 + 9 + 5 + 16 * 25),
    ('cens_9_1_ranges_not_whole_periods_iv8', 'cens', K1, IV8, (9, 1),
     [(3, 16 * 77 + 5), (0, 16 * 43), (7, 16 * 150 + 15)], 3 + 16 * 77 + 5 + 16 * 43 + 7 + 16 * 150 + 15),
    ('cens_5_3_wrap_after_64_blocks', 'cens', K1, IV16[:8] + (2**64 - 64).to_bytes(8, 'big'), (5, 3),
     [(0, 16 * 208)], 16 * 208),
    ('cens_0_0_140_blocks_wrap_iv16', 'cens', K2, HI + (2**64 - 3).to_bytes(8, 'big'), (0, 0), [], 16 * 140 + 4),
    ('cens_10_0_every_block_iv8', 'cens', K2, IV8, (10, 0), [(1, 200)], 201),
    ('cens_3_7_thirty_short_ranges', 'cens', K1, IV16, (3, 7), [(1, 16 * 4 + 1)] * 30 + [(2, 16 * 13)], 30 * 66 + 2 + 16 * 13),
    ('cbcs_1_9_iv_restart_partial_clear', 'cbcs', K1, CIV, (1, 9), [(16, 250), (5, 171), (0, 15), (0, 161)], 618),
    ('cbcs_1_9_full_sample', 'cbcs', K2, CIV, (1, 9), [], 1000),
    ('cbcs_0_0_every_block', 'cbcs', K1, CIV, (0, 0), [(7, 50), (0, 33)], 90),
    ('cbcs_3_7_short_last_run', 'cbcs', K2, CIV, (3, 7), [(2, 12 * 16 + 9)], 203),
    ('cbcs_10_0_every_block', 'cbcs', K1, CIV, (10, 0), [(1, 200)], 201),
    ('cbcs_5_5_two_ranges', 'cbcs', K2, IV16, (5, 5), [(0, 256), (4, 256)], 516),
    ('cbc1_full_sample_partial_clear', 'cbc1', K1, CIV, (0, 0), [], 77),
    ('cbc1_chain_across_subsamples', 'cbc1', K2, IV16, (0, 0), [(3, 32), (4, 21), (0, 16), (9, 48)], 133),
]

ERRORS = [
    # name, scheme, iv length, pattern, map, sample length, expected error
    ('cenc_iv_empty', 'cenc', 0, (0, 0), [], 16, 'BadIvLength'),
    ('cenc_iv_7', 'cenc', 7, (0, 0), [], 16, 'BadIvLength'),
    ('cenc_iv_12', 'cenc', 12, (0, 0), [], 16, 'BadIvLength'),
    ('cenc_iv_17', 'cenc', 17, (0, 0), [], 16, 'BadIvLength'),
    ('cens_iv_15', 'cens', 15, (1, 9), [], 16, 'BadIvLength'),
    ('cbcs_iv_8', 'cbcs', 8, (1, 9), [], 32, 'BadIvLength'),
    ('cbc1_iv_8', 'cbc1', 8, (0, 0), [], 32, 'BadIvLength'),
    ('cenc_with_pattern', 'cenc', 8, (1, 9), [], 32, 'BadPattern'),
    ('cbc1_with_pattern', 'cbc1', 16, (1, 0), [], 32, 'BadPattern'),
    ('cbcs_crypt0_skip3', 'cbcs', 16, (0, 3), [], 32, 'BadPattern'),
    ('cens_crypt0_skip1', 'cens', 8, (0, 1), [], 32, 'BadPattern'),
    ('cbcs_crypt16', 'cbcs', 16, (16, 0), [], 32, 'BadPattern'),
    ('cens_skip16', 'cens', 16, (1, 16), [], 32, 'BadPattern'),
    ('cbcs_crypt255', 'cbcs', 16, (255, 255), [], 32, 'BadPattern'),
    ('map_short', 'cenc', 8, (0, 0), [(3, 16)], 20, 'SubsampleMismatch'),
    ('map_long', 'cbcs', 16, (1, 9), [(3, 16), (0, 1)], 19, 'SubsampleMismatch'),
    ('map_all_zero_nonempty_sample', 'cens', 8, (1, 9), [(0, 0)], 1, 'SubsampleMismatch'),
    ('map_u32_wrap_clear', 'cenc', 8, (0, 0), [(4294967295, 17)], 16, 'SubsampleMismatch'),
    ('map_u32_wrap_protected', 'cbc1', 16, (0, 0), [(1, 4294967295), (0, 16)], 16, 'SubsampleMismatch'),
    ('map_u32_max_many', 'cens', 16, (1, 9), [(4294967295, 4294967295)] * 4, 64, 'SubsampleMismatch'),
]


def fmt_map(m):
    return '-' if not m else ','.join(f'{c}/{p}' for c, p in m)


print('# CENC corner cases (ISO/IEC 23001-7). Generated by gen_cenc_cases.py: do not edit by hand.')
print('# case  name scheme key iv pattern=crypt:skip map=clear/protected,...|- pt=seq:N (byte i = i mod 256) ct=hex')
print('# error name scheme iv=hex pattern map len=N expect=ErrorVariant (buffer must stay unchanged)')
for name, scheme, key, iv, pat, m, n in CASES:
    ct = encrypt(scheme, key, iv, pat, m, seq(n))
    print(f'case name={name} scheme={scheme} key={key.hex()} iv={iv.hex()} pattern={pat[0]}:{pat[1]} '
          f'map={fmt_map(m)} pt=seq:{n} ct={ct.hex() or "-"}')
for name, scheme, ivlen, pat, m, n, err in ERRORS:
    iv = bytes((0x40 + i) for i in range(ivlen))
    print(f'error name={name} scheme={scheme} iv={iv.hex() or "-"} pattern={pat[0]}:{pat[1]} '
          f'map={fmt_map(m)} len={n} expect={err}')
