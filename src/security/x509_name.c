/*
 * Java's RFC 2253 form of an X.509 name (see x509_name.h). OpenSSL's XN_FLAG_RFC2253 differs
 * from Java's in the keywords it prints (emailAddress, serialNumber, ... where Java prints a
 * dotted OID and the DER value in hex) and in what it escapes, so a principal mapping rule
 * written for Kafka would not match; this formatter follows Java's choices.
 */
#include "security/x509_name.h"

#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <string.h>

struct name_out {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void out_put(struct name_out *o, const void *s, size_t n)
{
    if (o->overflow || o->len + n >= o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_hex(struct name_out *o, const unsigned char *d, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hex[d[i] >> 4], hex[d[i] & 15]};
        out_put(o, two, 2);
    }
}

/* Java's RFC 2253 keyword of an attribute, NULL where it prints the OID. */
static const char *name_keyword(int nid)
{
    switch (nid) {
    case NID_commonName:
        return "CN";
    case NID_countryName:
        return "C";
    case NID_localityName:
        return "L";
    case NID_stateOrProvinceName:
        return "ST";
    case NID_organizationName:
        return "O";
    case NID_organizationalUnitName:
        return "OU";
    case NID_streetAddress:
        return "STREET";
    case NID_domainComponent:
        return "DC";
    case NID_userId:
        return "UID";
    default:
        return NULL;
    }
}

/* The string types Java prints as text (its isDerString, non-canonical). */
static bool name_is_text_type(int type)
{
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_T61STRING || type == V_ASN1_IA5STRING ||
           type == V_ASN1_GENERALSTRING || type == V_ASN1_BMPSTRING || type == V_ASN1_UTF8STRING;
}

static int name_put_der(struct name_out *o, const ASN1_STRING *v)
{
    ASN1_TYPE *t = ASN1_TYPE_new();
    if (t == NULL || ASN1_TYPE_set1(t, ASN1_STRING_type(v), v) != 1) {
        ASN1_TYPE_free(t);
        return -ENOMEM;
    }
    unsigned char *der = NULL;
    int n = i2d_ASN1_TYPE(t, &der);
    ASN1_TYPE_free(t);
    if (n < 0)
        return -ENOMEM;
    out_put(o, "#", 1);
    out_hex(o, der, (size_t)n);
    OPENSSL_free(der);
    return 0;
}

/* A text value with Java's escapes: each of , = + < > # ; " \ gets a backslash, NUL is "\00",
 * and spaces/CRs before the first or after the last other character get a backslash. */
static int name_put_text(struct name_out *o, const ASN1_STRING *v)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, v);
    if (n < 0)
        return -ENOMEM;
    int lead = 0, trail = n - 1;
    while (lead < n && (u[lead] == ' ' || u[lead] == '\r'))
        lead++;
    while (trail >= 0 && (u[trail] == ' ' || u[trail] == '\r'))
        trail--;
    for (int i = 0; i < n; i++) {
        char c = (char)u[i];
        if (c == '\0') {
            out_put(o, "\\00", 3);
            continue;
        }
        if (strchr(",=+<>#;\"\\", c) != NULL || i < lead || i > trail)
            out_put(o, "\\", 1);
        out_put(o, &c, 1);
    }
    OPENSSL_free(u);
    return 0;
}

static int name_put_entry(struct name_out *o, const X509_NAME_ENTRY *e)
{
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    const char *kw = name_keyword(OBJ_obj2nid(obj));
    if (kw != NULL) {
        out_put(o, kw, strlen(kw));
    } else {
        char oid[128];
        int n = OBJ_obj2txt(oid, sizeof(oid), obj, 1);
        if (n <= 0 || (size_t)n >= sizeof(oid))
            return -ENAMETOOLONG;
        out_put(o, oid, (size_t)n);
    }
    out_put(o, "=", 1);
    if (kw == NULL || !name_is_text_type(ASN1_STRING_type(v)))
        return name_put_der(o, v);
    return name_put_text(o, v);
}

int x509_name_rfc2253(const void *name, char *buf, size_t len)
{
    const X509_NAME *nm = name;
    struct name_out o = {.p = buf, .cap = len};
    if (len > 0)
        buf[0] = '\0';
    int i = X509_NAME_entry_count(nm) - 1;
    bool first_rdn = true;
    while (i >= 0) {
        /* the RDN ending at entry i: entries j..i share one set index */
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, i));
        int j = i;
        while (j > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, j - 1)) == set)
            j--;
        if (!first_rdn)
            out_put(&o, ",", 1);
        first_rdn = false;
        for (int k = j; k <= i; k++) {
            if (k > j)
                out_put(&o, "+", 1);
            int rc = name_put_entry(&o, X509_NAME_get_entry(nm, k));
            if (rc != 0)
                return rc;
        }
        i = j - 1;
    }
    return o.overflow ? -ENAMETOOLONG : 0;
}
