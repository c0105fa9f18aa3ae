/*
 * A certificate subject as Java's X500Principal.getName() (RFC 2253) prints it, which is the
 * text Kafka's principal builder and ssl.principal.mapping.rules see: RDNs last to first joined
 * by ',', a multi-valued RDN's values in encoded order joined by '+', the keywords CN C L ST O
 * OU STREET DC UID and a dotted OID for every other attribute; string values with each of
 * , = + < > # ; " \ backslash-escaped and leading/trailing spaces escaped; an OID-named or
 * non-string value as '#' and the hex of its DER encoding. Any thread.
 */
#ifndef GREGOR_SECURITY_X509_NAME_H
#define GREGOR_SECURITY_X509_NAME_H

#include <stddef.h>

/* name is an X509_NAME *. Writes the NUL-terminated text to buf; returns 0, or -ENAMETOOLONG
 * when it does not fit (buf then holds a truncated text), -ENOMEM. */
int x509_name_rfc2253(const void *name, char *buf, size_t len);

#endif
