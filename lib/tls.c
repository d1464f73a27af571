/*
 * tls: OpenSSL contexts for rpc (see rpc_int.h). Owns the TLS policy:
 * TLS 1.2 or newer, ALPN "h2" only (gRPC needs HTTP/2; RFC 7540 §3.3),
 * server verification by default, client certificates when the server has
 * a CA for them (mutual TLS).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "rpc_int.h"

static const unsigned char alpn_h2[] = "\x02h2";

static void log_ssl_error(const char *what, const char *file)
{
	char buf[256];
	unsigned long e = ERR_get_error();
	ERR_error_string_n(e, buf, sizeof buf);
	log_error("tls_error", "what=%s file=%s error=%s", what, log_quote(file ? file : ""),
		  log_quote(buf));
	ERR_clear_error();
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, alpn_h2, sizeof alpn_h2 - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int load_pair(SSL_CTX *ctx, const struct rpc_tls_opts *t)
{
	if (!t->cert_file && !t->key_file)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		log_ssl_error("load_cert", t->cert_file);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file ? t->key_file : t->cert_file,
					SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_error("load_key", t->key_file);
		return -1;
	}
	return 0;
}

SSL_CTX *tls_server_ctx(const struct rpc_tls_opts *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (!t->cert_file || load_pair(ctx, t) != 0) {
		if (!t->cert_file)
			log_error("tls_error", "what=server_needs_cert");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (t->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1) {
			log_ssl_error("load_client_ca", t->ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
}

SSL_CTX *tls_client_ctx(const struct rpc_tls_opts *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof alpn_h2 - 1);
	int ok = t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
			    : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		log_ssl_error("load_ca", t->ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (load_pair(ctx, t) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL *tls_client_ssl(SSL_CTX *ctx, const char *name, int insecure)
{
	SSL *ssl = SSL_new(ctx);
	if (!insecure) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		/* An address is checked against IP SANs, a name against DNS. */
		if (X509_VERIFY_PARAM_set1_ip_asc(p, name) != 1)
			SSL_set1_host(ssl, name);
	}
	/* SNI carries names only, never addresses (RFC 6066 §3). */
	if (strspn(name, "0123456789.:[]") != strlen(name))
		SSL_set_tlsext_host_name(ssl, name);
	return ssl;
}

const char *tls_error_string(unsigned long e, char *buf, size_t len)
{
	/* libevent reports an SSL_get_error() code when OpenSSL's queue is
	 * empty. SSL_ERROR_SYSCALL is the peer hanging up mid-TLS, which is
	 * how a client usually learns it was refused: the server's alert is
	 * lost when its close resets the connection. */
	if (e == SSL_ERROR_SYSCALL)
		snprintf(buf, len, "TLS connection closed by the peer (it may require a client "
				   "certificate, or refuse ours)");
	else
		ERR_error_string_n(e, buf, len);
	return buf;
}

int tls_alpn_is_h2(SSL *ssl)
{
	const unsigned char *p;
	unsigned int n;
	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == 2 && memcmp(p, "h2", 2) == 0;
}
