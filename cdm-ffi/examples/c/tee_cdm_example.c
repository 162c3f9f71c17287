/*
 * tee_cdm_example.c: both sides of tee-cdm's C ABI (include/tee_cdm.h), from C.
 *
 * 1. Host side, as a media stack uses it: the Clear Key flow of EME. Negotiate access,
 *    create MediaKeys (the secure world in this process; with a `secure-world-host` path as
 *    argv[1], also in its own process), create a session, generate a license request from
 *    `keyids` and from `cenc` init data, answer it with a Clear Key license for a fixed test
 *    key, update, decrypt a `cenc` sample and a `cbcs` sample in place and compare them with
 *    the plaintext below, close, free.
 * 2. Secure-world side, as a TEE integrator uses it: create a secure world with platform
 *    services as C callbacks (randomness, clock, and an in-memory store, counter and root key
 *    standing in for a device's), process ABI requests by hand (docs/abi.md), destroy it.
 *
 * Exits 0 when everything checks out, 1 (with the reason on stderr) otherwise.
 *
 * Build and run: bash cdm-ffi/examples/c/run.sh (see README.md, "C ABI (cdm-ffi)").
 *
 * THE KEYS HERE ARE TEST VALUES. The root key and the in-memory store protect nothing.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tee_cdm.h"

/* ------------------------------------------------------------------------------------------
 * Test vectors.
 *
 * Key ID 0123456789abcdef0123456789abcdef, key 2b7e151628aed2a6abf7158809cf4f3c (the AES-128
 * key of NIST SP 800-38A, F.1-F.5). The ciphertext bytes below were produced once with OpenSSL
 * 3.0 (`openssl enc`), not with tee-cdm:
 *
 * cenc (AES-128-CTR; 8-byte IV f0f1f2f3f4f5f6f7 is the high half of the counter block, whose
 * low half starts at 0; subsamples [4 clear, 20 protected] [6 clear, 34 protected]; the
 * keystream runs on across the protected ranges, ISO/IEC 23001-7 §10.1):
 *
 *   printf 'tee-cdm C ABI example: this cenc sample is decrypted in place!!\n' > p.bin
 *   { dd if=p.bin bs=1 skip=4 count=20; dd if=p.bin bs=1 skip=30 count=34; } 2>/dev/null > prot.bin
 *   openssl enc -aes-128-ctr -K 2b7e151628aed2a6abf7158809cf4f3c \
 *       -iv f0f1f2f3f4f5f6f70000000000000000 -in prot.bin | xxd -i
 *
 * cbcs (AES-128-CBC, pattern 1:9, constant IV 000102030405060708090a0b0c0d0e0f; one
 * subsample [8 clear, 197 protected]: of the protected range's 12 whole blocks, blocks 0 and
 * 10 are encrypted as one CBC chain, the others and the 5-byte tail stay clear, §10.4):
 *
 *   printf 'cbcs 1:9: a sample with a 1:9 pattern: only blocks 0 and 10 of the protected range are encrypted, as one CBC chain from the constant IV; the 8-byte header, the skipped blocks and the tail stay clear!!!!!!\n' > p2.bin
 *   { dd if=p2.bin bs=1 skip=8 count=16; dd if=p2.bin bs=1 skip=168 count=16; } 2>/dev/null > prot2.bin
 *   openssl enc -aes-128-cbc -nopad -K 2b7e151628aed2a6abf7158809cf4f3c \
 *       -iv 000102030405060708090a0b0c0d0e0f -in prot2.bin | xxd -i
 * ---------------------------------------------------------------------------------------- */

static const uint8_t KEY_ID[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const uint8_t KEY[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};

static const char CENC_PLAIN[] = "tee-cdm C ABI example: this cenc sample is decrypted in place!!\n";
static const uint8_t CENC_IV[8] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7};
static const TeeCdmSubsample CENC_SUBSAMPLES[2] = {{4, 20}, {6, 34}};
/* openssl's output for prot.bin: 20 bytes for [4, 24), then 34 bytes for [30, 64). */
static const uint8_t CENC_OPENSSL[54] = {
    0x6f, 0x4b, 0xd6, 0x96, 0x19, 0xf9, 0x26, 0x68, 0x50, 0xde, 0x98, 0x4d, 0xfa, 0x9e,
    0x3b, 0x6e, 0xca, 0x95, 0xbc, 0x86, 0x84, 0xba, 0x4d, 0x40, 0x81, 0xc8, 0xb1, 0xba,
    0x2c, 0xa1, 0xd9, 0xbd, 0x03, 0x44, 0xc5, 0x6f, 0xe6, 0x72, 0x31, 0x2d, 0x93, 0x07,
    0xe4, 0xbf, 0xe1, 0x49, 0x36, 0x8e, 0xb8, 0x74, 0xcc, 0x55, 0xb5, 0x10};

static const char CBCS_PLAIN[] =
    "cbcs 1:9: a sample with a 1:9 pattern: only blocks 0 and 10 of the protected range are "
    "encrypted, as one CBC chain from the constant IV; the 8-byte header, the skipped blocks "
    "and the tail stay clear!!!!!!\n";
static const uint8_t CBCS_IV[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const TeeCdmSubsample CBCS_SUBSAMPLES[1] = {{8, 197}};
/* openssl's output for prot2.bin: 16 bytes for [8, 24), then 16 bytes for [168, 184). */
static const uint8_t CBCS_OPENSSL[32] = {
    0x97, 0x01, 0x49, 0x91, 0xc9, 0x0b, 0xbe, 0x01, 0xd1, 0xf3, 0xba, 0xf0, 0x3d, 0xe5, 0xb0, 0xe1,
    0x9b, 0x97, 0xe8, 0x48, 0x42, 0xb9, 0x1d, 0x73, 0x37, 0x46, 0x87, 0x08, 0xa4, 0x50, 0xe9, 0xd6};

/* A `cenc` init data: one version-1 pssh box of the Common SystemID
 * 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b listing KEY_ID (ISO/IEC 23001-7 §8.1, W3C "cenc" Init
 * Data Format). */
static const uint8_t PSSH[52] = {
    0x00, 0x00, 0x00, 0x34, 'p',  's',  's',  'h',  0x01, 0x00, 0x00, 0x00, /* size, v1 */
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, /* SystemID */
    0x52, 0xe2, 0xfb, 0x4b, 0x00, 0x00, 0x00, 0x01,                         /* KID_count */
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
    0x89, 0xab, 0xcd, 0xef, 0x00, 0x00, 0x00, 0x00}; /* KID, DataSize 0 */

/* ------------------------------------------------------------------------------------------
 * Helpers.
 * ---------------------------------------------------------------------------------------- */

static void die(const char *what, int line) {
    fprintf(stderr, "tee_cdm_example.c:%d: FAILED: %s\n", line, what);
    exit(1);
}

#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) die(#cond, __LINE__);                                                    \
    } while (0)

/* Prints the status name and the thread's last error message, then exits. */
static void fail_status(const char *call, TeeCdmStatus got, TeeCdmStatus want, int line) {
    char msg[512];
    size_t needed = 0;
    if (tee_cdm_last_error_message(msg, sizeof msg, &needed) != TEE_CDM_STATUS_OK) {
        snprintf(msg, sizeof msg, "(message of %zu bytes not shown)", needed);
    }
    fprintf(stderr, "tee_cdm_example.c:%d: %s -> %s (%u), expected %s\n  last error: %s\n", line,
            call, tee_cdm_status_name(got), (unsigned)got, tee_cdm_status_name(want), msg);
    exit(1);
}

#define EXPECT(call, want)                                                                    \
    do {                                                                                      \
        TeeCdmStatus st_ = (call);                                                            \
        if (st_ != (want)) fail_status(#call, st_, (want), __LINE__);                         \
    } while (0)

#define CHECK(call) EXPECT(call, TEE_CDM_STATUS_OK)

/* Base64url without padding (RFC 4648 §5), as Clear Key's JSON uses (EME §9.1.3). */
static void b64url(const uint8_t *in, size_t len, char *out) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = A[(v >> 18) & 63];
        out[o++] = A[(v >> 12) & 63];
        if (i + 1 < len) out[o++] = A[(v >> 6) & 63];
        if (i + 2 < len) out[o++] = A[v & 63];
    }
    out[o] = '\0';
}

/* Polls the next event of `s`; a message is returned in a malloc'ed buffer (*message). Uses
 * the "needed size" protocol: first with no buffer, then with one of the size reported. */
static TeeCdmEvent next_event(TeeCdmSession *s, uint8_t **message) {
    TeeCdmEvent ev;
    *message = NULL;
    TeeCdmStatus st = tee_cdm_session_next_event(s, &ev, NULL, 0);
    if (st == TEE_CDM_STATUS_BUFFER_TOO_SMALL) {
        REQUIRE(ev.kind == TEE_CDM_EVENT_KIND_MESSAGE && ev.message_len > 0);
        *message = malloc(ev.message_len + 1);
        REQUIRE(*message != NULL);
        CHECK(tee_cdm_session_next_event(s, &ev, *message, ev.message_len));
        (*message)[ev.message_len] = '\0'; /* Clear Key messages are JSON text */
    } else {
        CHECK(st);
    }
    return ev;
}

static void decrypt_and_verify(TeeCdmMediaKeys *keys, const char *name, uint32_t scheme,
                               const char *plain, size_t len, const uint8_t *iv, size_t iv_len,
                               uint8_t crypt, uint8_t skip, const TeeCdmSubsample *subs,
                               size_t nsubs, const uint8_t *openssl_bytes) {
    uint8_t *sample = malloc(len);
    REQUIRE(sample != NULL);
    /* The encrypted sample: the plaintext with its encrypted ranges replaced by openssl's
     * output, in order. */
    memcpy(sample, plain, len);
    size_t at = 0, used = 0;
    for (size_t i = 0; i < nsubs; i++) {
        at += subs[i].clear_bytes;
        size_t prot = subs[i].protected_bytes;
        if (scheme == TEE_CDM_SCHEME_CENC) {
            memcpy(sample + at, openssl_bytes + used, prot);
            used += prot;
        } else { /* cbcs: crypt blocks of each (crypt + skip)-block period, whole blocks only */
            for (size_t b = 0; (b + 1) * 16 <= prot; b++) {
                if (b % (size_t)(crypt + skip) < crypt) {
                    memcpy(sample + at + b * 16, openssl_bytes + used, 16);
                    used += 16;
                }
            }
        }
        at += prot;
    }
    REQUIRE(at == len);
    REQUIRE(memcmp(sample, plain, len) != 0);

    TeeCdmSampleDescription desc = {
        .key_id = KEY_ID,
        .key_id_len = sizeof KEY_ID,
        .scheme = scheme,
        .iv = iv,
        .iv_len = iv_len,
        .crypt_byte_block = crypt,
        .skip_byte_block = skip,
        .subsamples = subs,
        .subsamples_len = nsubs,
    };
    CHECK(tee_cdm_media_keys_decrypt(keys, sample, len, &desc));
    if (memcmp(sample, plain, len) != 0) die("decrypted sample differs from the plaintext", __LINE__);
    printf("  %s sample (%zu bytes): decrypted in place, matches the plaintext\n", name, len);
    free(sample);
}

/* ------------------------------------------------------------------------------------------
 * Host side: the Clear Key flow.
 * ---------------------------------------------------------------------------------------- */

static void clear_key_flow(const char *host_path, const char *init_data_type) {
    printf("host: Clear Key with %s init data, secure world %s\n", init_data_type,
           host_path ? "in a secure-world-host process" : "in this process");

    /* requestMediaKeySystemAccess("org.w3.clearkey", [config]) */
    const char *init_data_types[] = {"cenc", "keyids"};
    TeeCdmMediaCapability video[] = {
        {.content_type = "video/mp4; codecs=\"avc1.64001f\"", .encryption_scheme = "cenc"},
        {.content_type = "video/mp4; codecs=\"avc1.64001f\"", .encryption_scheme = "cbcs"},
    };
    TeeCdmConfiguration config = {
        .label = "c-example",
        .init_data_types = init_data_types,
        .init_data_types_len = 2,
        .video_capabilities = video,
        .video_capabilities_len = 2,
    };
    TeeCdmAccess *access = NULL;
    CHECK(tee_cdm_request_access("org.w3.clearkey", &config, 1, NULL, &access));
    /* An unknown key system is NotSupportedError, as in a browser. */
    TeeCdmAccess *none = NULL;
    EXPECT(tee_cdm_request_access("com.example.unknown", &config, 1, NULL, &none),
           TEE_CDM_STATUS_NOT_SUPPORTED);
    REQUIRE(none == NULL);

    /* getConfiguration(), with the "needed size" protocol. */
    size_t needed = 0;
    EXPECT(tee_cdm_access_get_configuration_json(access, NULL, 0, &needed),
           TEE_CDM_STATUS_BUFFER_TOO_SMALL);
    char *json = malloc(needed);
    REQUIRE(json != NULL);
    CHECK(tee_cdm_access_get_configuration_json(access, json, needed, &needed));
    REQUIRE(strstr(json, "\"label\":\"c-example\"") != NULL);
    REQUIRE(strstr(json, "\"sessionTypes\":[\"temporary\"]") != NULL);
    printf("  getConfiguration: %s\n", json);
    free(json);

    /* createMediaKeys, createSession("temporary") */
    TeeCdmMediaKeys *keys = NULL;
    if (host_path) {
        CHECK(tee_cdm_media_keys_create_with_host(access, host_path, &keys));
    } else {
        CHECK(tee_cdm_media_keys_create(access, &keys));
    }
    CHECK(tee_cdm_access_free(access)); /* MediaKeys outlive their access */
    TeeCdmSession *session = NULL;
    CHECK(tee_cdm_session_create(keys, TEE_CDM_SESSION_TYPE_TEMPORARY, &session));

    /* Before a license, a sample waits for its key. */
    uint8_t early[16] = {0};
    TeeCdmSampleDescription early_desc = {.key_id = KEY_ID, .key_id_len = 16,
                                          .scheme = TEE_CDM_SCHEME_CENC, .iv = CENC_IV,
                                          .iv_len = 8};
    EXPECT(tee_cdm_media_keys_decrypt(keys, early, sizeof early, &early_desc),
           TEE_CDM_STATUS_WAITING_FOR_KEY);

    /* generateRequest */
    char kid_b64[32], key_b64[32];
    b64url(KEY_ID, sizeof KEY_ID, kid_b64);
    b64url(KEY, sizeof KEY, key_b64);
    if (strcmp(init_data_type, "keyids") == 0) {
        char keyids[96];
        int n = snprintf(keyids, sizeof keyids, "{\"kids\":[\"%s\"]}", kid_b64);
        REQUIRE(n > 0 && (size_t)n < sizeof keyids);
        CHECK(tee_cdm_session_generate_request(session, "keyids", (const uint8_t *)keyids,
                                               (size_t)n));
    } else {
        CHECK(tee_cdm_session_generate_request(session, "cenc", PSSH, sizeof PSSH));
    }
    /* A second generateRequest is InvalidStateError (EME §6.6.2 step 3). */
    EXPECT(tee_cdm_session_generate_request(session, "cenc", PSSH, sizeof PSSH),
           TEE_CDM_STATUS_INVALID_STATE);

    char session_id[65];
    CHECK(tee_cdm_session_get_id(session, session_id, sizeof session_id, &needed));
    REQUIRE(needed > 1);

    /* The "message" event: the Clear Key license request {"kids":[...],"type":"temporary"}. */
    uint8_t *message = NULL;
    TeeCdmEvent ev = next_event(session, &message);
    REQUIRE(ev.kind == TEE_CDM_EVENT_KIND_MESSAGE);
    REQUIRE(ev.message_type == TEE_CDM_MESSAGE_TYPE_LICENSE_REQUEST);
    printf("  session %s: license request %s\n", session_id, (const char *)message);
    REQUIRE(strstr((const char *)message, kid_b64) != NULL);
    REQUIRE(strstr((const char *)message, "\"type\":\"temporary\"") != NULL);
    free(message);

    /* The license server's answer: a JWK Set with the requested key (EME §9.1.4). */
    char license[256];
    int n = snprintf(license, sizeof license,
                     "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"%s\",\"k\":\"%s\"}],"
                     "\"type\":\"temporary\"}",
                     kid_b64, key_b64);
    REQUIRE(n > 0 && (size_t)n < sizeof license);
    /* A malformed license is TypeError and changes nothing. */
    EXPECT(tee_cdm_session_update(session, (const uint8_t *)"{\"keys\":", 8),
           TEE_CDM_STATUS_TYPE_ERROR);
    CHECK(tee_cdm_session_update(session, (const uint8_t *)license, (size_t)n));
    memset(license, 0, sizeof license); /* it carried the key */

    ev = next_event(session, &message);
    REQUIRE(ev.kind == TEE_CDM_EVENT_KIND_KEY_STATUSES_CHANGE);
    TeeCdmKeyStatus status = TEE_CDM_KEY_STATUS_NONE;
    CHECK(tee_cdm_session_get_key_status(session, KEY_ID, sizeof KEY_ID, &status));
    REQUIRE(status == TEE_CDM_KEY_STATUS_USABLE);
    size_t count = 0;
    CHECK(tee_cdm_session_get_key_count(session, &count));
    REQUIRE(count == 1);
    uint8_t kid[512];
    size_t kid_len = 0;
    CHECK(tee_cdm_session_get_key_at(session, 0, kid, sizeof kid, &kid_len, &status));
    REQUIRE(kid_len == 16 && memcmp(kid, KEY_ID, 16) == 0 && status == TEE_CDM_KEY_STATUS_USABLE);
    printf("  key %s: usable\n", kid_b64);

    /* Decrypt in place and compare with the plaintext. */
    decrypt_and_verify(keys, "cenc", TEE_CDM_SCHEME_CENC, CENC_PLAIN, sizeof CENC_PLAIN - 1,
                       CENC_IV, sizeof CENC_IV, 0, 0, CENC_SUBSAMPLES, 2, CENC_OPENSSL);
    decrypt_and_verify(keys, "cbcs", TEE_CDM_SCHEME_CBCS, CBCS_PLAIN, sizeof CBCS_PLAIN - 1,
                       CBCS_IV, sizeof CBCS_IV, 1, 9, CBCS_SUBSAMPLES, 1, CBCS_OPENSSL);

    /* close(): key statuses cleared, then the closed event. */
    CHECK(tee_cdm_session_close(session));
    int saw_closed = 0;
    for (;;) {
        ev = next_event(session, &message);
        free(message);
        if (ev.kind == TEE_CDM_EVENT_KIND_NONE) break;
        if (ev.kind == TEE_CDM_EVENT_KIND_CLOSED) {
            REQUIRE(ev.closed_reason == TEE_CDM_CLOSED_REASON_CLOSED_BY_APPLICATION);
            saw_closed = 1;
        }
    }
    REQUIRE(saw_closed);
    /* The key is gone with the session. */
    EXPECT(tee_cdm_media_keys_decrypt(keys, early, sizeof early, &early_desc),
           TEE_CDM_STATUS_WAITING_FOR_KEY);

    CHECK(tee_cdm_session_free(session));
    EXPECT(tee_cdm_session_free(session), TEE_CDM_STATUS_BAD_HANDLE); /* freed twice */
    CHECK(tee_cdm_media_keys_free(keys));
}

/* ------------------------------------------------------------------------------------------
 * Secure-world side: platform callbacks and one world.
 * ---------------------------------------------------------------------------------------- */

#define STORE_SLOTS 16

struct blob {
    char name[TEE_CDM_SW_MAX_BLOB_NAME_LEN + 1];
    uint8_t *data;
    size_t len;
};

/* What a device supplies from its TEE: here, memory. */
struct device {
    FILE *urandom;
    struct blob store[STORE_SLOTS];
    uint64_t counter;
    unsigned calls_random, calls_get, calls_list, calls_counter, calls_root_key;
};

static int32_t dev_random(void *ctx, uint8_t *out, size_t len) {
    struct device *d = ctx;
    d->calls_random++;
    return fread(out, 1, len, d->urandom) == len ? 0 : -1;
}

static int32_t dev_now_ms(void *ctx, int64_t *now_ms) {
    (void)ctx;
    *now_ms = (int64_t)time(NULL) * 1000;
    return 0;
}

static struct blob *find(struct device *d, const char *name) {
    for (int i = 0; i < STORE_SLOTS; i++) {
        if (d->store[i].data && strcmp(d->store[i].name, name) == 0) return &d->store[i];
    }
    return NULL;
}

static int32_t dev_get(void *ctx, const char *name, TeeCdmSwSink *sink, TeeCdmSwAppendFn append) {
    struct device *d = ctx;
    d->calls_get++;
    struct blob *b = find(d, name);
    if (!b) return TEE_CDM_SW_RESULT_NOT_FOUND;
    return append(sink, b->data, b->len);
}

static int32_t dev_put(void *ctx, const char *name, const uint8_t *blob, size_t len) {
    struct device *d = ctx;
    struct blob *b = find(d, name);
    for (int i = 0; !b && i < STORE_SLOTS; i++) {
        if (!d->store[i].data) b = &d->store[i];
    }
    if (!b) return TEE_CDM_SW_RESULT_FULL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return TEE_CDM_SW_RESULT_OUT_OF_MEMORY;
    if (len) memcpy(copy, blob, len);
    free(b->data); /* replaced in one step: the store is atomic */
    snprintf(b->name, sizeof b->name, "%s", name);
    b->data = copy;
    b->len = len;
    return TEE_CDM_SW_RESULT_OK;
}

static int32_t dev_delete(void *ctx, const char *name) {
    struct blob *b = find(ctx, name);
    if (!b) return TEE_CDM_SW_RESULT_NOT_FOUND;
    free(b->data);
    b->data = NULL;
    return TEE_CDM_SW_RESULT_OK;
}

static int32_t dev_list(void *ctx, TeeCdmSwSink *sink, TeeCdmSwAppendFn append) {
    struct device *d = ctx;
    d->calls_list++;
    for (int i = 0; i < STORE_SLOTS; i++) {
        if (!d->store[i].data) continue;
        int32_t r = append(sink, (const uint8_t *)d->store[i].name, strlen(d->store[i].name));
        if (r != TEE_CDM_SW_RESULT_OK && r != TEE_CDM_SW_RESULT_INVALID_NAME) return r;
    }
    return TEE_CDM_SW_RESULT_OK;
}

static int32_t dev_counter_read(void *ctx, uint64_t *value) {
    struct device *d = ctx;
    d->calls_counter++;
    *value = d->counter;
    return TEE_CDM_SW_RESULT_OK;
}

static int32_t dev_counter_increment(void *ctx, uint64_t *value) {
    struct device *d = ctx;
    if (d->counter == UINT64_MAX) return TEE_CDM_SW_RESULT_EXHAUSTED;
    *value = ++d->counter;
    return TEE_CDM_SW_RESULT_OK;
}

static int32_t dev_root_key(void *ctx, uint8_t *key) {
    struct device *d = ctx;
    d->calls_root_key++;
    /* A device derives this from its hardware-unique key. A constant is for examples only. */
    for (int i = 0; i < TEE_CDM_SW_ROOT_KEY_LEN; i++) key[i] = (uint8_t)(0xa0 + i);
    return 0;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A request header (docs/abi.md §3): magic "TCDM", version 1, opcode, session 0, request_id,
 * payload_len 0, status 0, reserved 0. */
static void abi_header(uint8_t h[32], uint16_t opcode, uint32_t request_id) {
    memset(h, 0, 32);
    memcpy(h, "TCDM", 4);
    put_u16(h + 4, 1);
    put_u16(h + 6, opcode);
    put_u32(h + 16, request_id);
}

static void secure_world_flow(void) {
    printf("secure world: callbacks for randomness, clock, storage, counter, root key\n");
    struct device dev;
    memset(&dev, 0, sizeof dev);
    dev.urandom = fopen("/dev/urandom", "rb");
    REQUIRE(dev.urandom != NULL);

    TeeCdmSwPlatform platform = {.ctx = &dev, .random = dev_random, .now_ms = dev_now_ms};
    TeeCdmSwPersistence persistence = {
        .ctx = &dev,
        .storage_get = dev_get,
        .storage_put = dev_put,
        .storage_delete = dev_delete,
        .storage_list = dev_list,
        .counter_read = dev_counter_read,
        .counter_increment = dev_counter_increment,
        .root_key = dev_root_key,
    };
    TeeCdmSwConfig config = {.max_sessions = 4}; /* a small TEE; 0 = the defaults */

    /* Checked arguments: no platform, a limit above its maximum. */
    TeeCdmSecureWorld *world = NULL;
    EXPECT(tee_cdm_sw_create(NULL, NULL, NULL, &world), TEE_CDM_STATUS_NULL_POINTER);
    TeeCdmSwConfig too_big = {.max_sessions = 1000};
    EXPECT(tee_cdm_sw_create(&platform, &too_big, NULL, &world), TEE_CDM_STATUS_INVALID_ARGUMENT);
    REQUIRE(world == NULL);

    CHECK(tee_cdm_sw_create(&platform, &config, &persistence, &world));
    REQUIRE(dev.calls_root_key > 0 && dev.calls_counter > 0); /* the store was opened */
    uint32_t fault = 1;
    CHECK(tee_cdm_sw_storage_fault(world, &fault));
    REQUIRE(fault == 0);

    /* GetCapabilities (opcode 0x0001), request id 7. */
    uint8_t request[32];
    abi_header(request, 0x0001, 7);
    static uint8_t response[TEE_CDM_SW_MAX_RESPONSE_LEN];
    size_t response_len = 0;
    /* An undersized response buffer is refused before the request is looked at. */
    EXPECT(tee_cdm_sw_process(world, request, sizeof request, NULL, 0, response, 64,
                              &response_len),
           TEE_CDM_STATUS_BUFFER_TOO_SMALL);
    REQUIRE(response_len == TEE_CDM_SW_MAX_RESPONSE_LEN);
    CHECK(tee_cdm_sw_process(world, request, sizeof request, NULL, 0, response, sizeof response,
                             &response_len));

    /* The response header echoes opcode and request id, status 0; the payload is
     * Capabilities: u16 abi_version, bytes8 engine, bytes8 robustness[], bytes8 schemes[],
     * bytes8 session_types[], u32 max_sessions, ... (docs/abi.md §4). */
    REQUIRE(response_len >= 32 && memcmp(response, "TCDM", 4) == 0);
    REQUIRE(get_u16(response + 6) == 0x0001);
    REQUIRE(get_u32(response + 16) == 7);
    REQUIRE(get_u32(response + 24) == 0);
    REQUIRE(get_u32(response + 20) == response_len - 32);
    const uint8_t *p = response + 32;
    REQUIRE(get_u16(p) == 1);
    size_t engine_len = p[2];
    printf("  GetCapabilities: ABI version %u, engine %.*s\n", get_u16(p), (int)engine_len,
           (const char *)(p + 3));
    p += 3 + engine_len;
    p += 1 + p[0];          /* robustness levels */
    p += 1 + p[0];          /* schemes */
    size_t n_types = p[0];  /* session types: temporary (1), and persistent-license (2) */
    int persistent = 0;     /* because storage callbacks were given */
    for (size_t i = 0; i < n_types; i++) persistent |= p[1 + i] == 2;
    REQUIRE(persistent);
    p += 1 + n_types;
    REQUIRE(get_u32(p) == 4); /* max_sessions from our config */

    /* A malformed request is answered, not refused: status BadMagic (0x0102) in the header. */
    request[0] = 'X';
    CHECK(tee_cdm_sw_process(world, request, sizeof request, NULL, 0, response, sizeof response,
                             &response_len));
    REQUIRE(response_len == 32 && get_u32(response + 24) == 0x0102);
    printf("  malformed request: answered with status 0x%04" PRIx32 " (BadMagic)\n",
           get_u32(response + 24));

    CHECK(tee_cdm_sw_destroy(world));
    EXPECT(tee_cdm_sw_destroy(world), TEE_CDM_STATUS_BAD_HANDLE);
    EXPECT(tee_cdm_sw_process(world, request, sizeof request, NULL, 0, response,
                              sizeof response, &response_len),
           TEE_CDM_STATUS_BAD_HANDLE);
    /* Every failure leaves a message for its thread. */
    char msg[256];
    size_t needed = 0;
    CHECK(tee_cdm_last_error_message(msg, sizeof msg, &needed));
    REQUIRE(strstr(msg, "tee_cdm_sw_process") != NULL && strstr(msg, "TeeCdmSecureWorld") != NULL);
    printf("  destroyed; a stale handle is refused: %s\n", msg);

    for (int i = 0; i < STORE_SLOTS; i++) free(dev.store[i].data);
    fclose(dev.urandom);
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: %s [PATH-TO-secure-world-host]\n", argv[0]);
        return 2;
    }
    clear_key_flow(NULL, "keyids");
    clear_key_flow(NULL, "cenc");
    if (argc == 2) clear_key_flow(argv[1], "cenc");
    secure_world_flow();
    printf("all checks passed\n");
    return 0;
}
