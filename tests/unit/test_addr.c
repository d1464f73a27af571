/* Unit tests for lib/addr: TCP and unix forms parse, bad ones are refused
 * with the reason, and a unix address becomes the sockaddr it names. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "addr.h"

START_TEST(tcp_forms)
{
	struct addr a;
	ck_assert_int_eq(addr_parse("127.0.0.1:50051", &a), 0);
	ck_assert_int_eq(a.family, AF_UNSPEC);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_int_eq(a.port, 50051);
	ck_assert_int_eq(addr_parse("[::1]:7", &a), 0);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_int_eq(addr_parse(":0", &a), 0);
	ck_assert_str_eq(a.host, "");
	ck_assert_int_eq(addr_parse("8080", &a), 0);
	ck_assert_int_eq(a.port, 8080);
	ck_assert_int_eq(addr_parse("unixhost:1", &a), 0); /* a host, not the scheme */
	ck_assert_str_eq(a.host, "unixhost");
}
END_TEST

START_TEST(tcp_bad)
{
	struct addr a;
	ck_assert_int_eq(addr_parse("", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("host:", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("host:65536", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("::1:5", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("[::1]5", &a), -EINVAL);
}
END_TEST

START_TEST(unix_forms)
{
	struct addr a;
	ck_assert_int_eq(addr_parse("unix:rel/s.sock", &a), 0);
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_str_eq(a.un.sun_path, "rel/s.sock");
	ck_assert_int_eq(a.unlen, offsetof(struct sockaddr_un, sun_path) + 11);
	ck_assert(addr_is_unix_path(&a));
	ck_assert_int_eq(addr_parse("unix:/abs/s.sock", &a), 0);
	ck_assert_str_eq(a.un.sun_path, "/abs/s.sock");
	/* unix:// carries an empty authority: three slashes, the same path */
	ck_assert_int_eq(addr_parse("unix:///abs/s.sock", &a), 0);
	ck_assert_str_eq(a.un.sun_path, "/abs/s.sock");

	struct sockaddr_storage ss;
	socklen_t len;
	ck_assert_int_eq(addr_resolve(&a, 1, &ss, &len), 0);
	ck_assert_int_eq(len, a.unlen);
	ck_assert_int_eq(ss.ss_family, AF_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&ss)->sun_path, "/abs/s.sock");
}
END_TEST

START_TEST(unix_abstract)
{
	struct addr a;
	ck_assert_int_eq(addr_parse("unix-abstract:orchd", &a), 0);
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_int_eq(a.un.sun_path[0], '\0');
	ck_assert_int_eq(memcmp(a.un.sun_path + 1, "orchd", 5), 0);
	/* the name is exactly its bytes: no terminating NUL counted */
	ck_assert_int_eq(a.unlen, offsetof(struct sockaddr_un, sun_path) + 6);
	ck_assert(!addr_is_unix_path(&a));
}
END_TEST

START_TEST(unix_bad)
{
	struct addr a;
	char path[200];
	ck_assert_int_eq(addr_parse("unix:", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("unix://", &a), -EINVAL);
	ck_assert_int_eq(addr_parse("unix://rel/s.sock", &a), -EINVAL); /* an authority */
	ck_assert_int_eq(addr_parse("unix-abstract:", &a), -EINVAL);

	/* sun_path holds 107 bytes and the NUL */
	size_t room = sizeof a.un.sun_path - 1;
	memcpy(path, "unix:/", 6);
	memset(path + 6, 'x', room - 1);
	path[5 + room] = '\0';
	ck_assert_int_eq(addr_parse(path, &a), 0);
	ck_assert_uint_eq(strlen(a.un.sun_path), room);
	path[5 + room] = 'x';
	path[6 + room] = '\0';
	ck_assert_int_eq(addr_parse(path, &a), -ENAMETOOLONG);
	ck_assert_str_ne(addr_parse_strerror(-ENAMETOOLONG), addr_parse_strerror(-EINVAL));
	ck_assert_ptr_nonnull(strstr(addr_parse_strerror(-ENAMETOOLONG), "too long"));
}
END_TEST

Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, tcp_forms);
	tcase_add_test(tc, tcp_bad);
	tcase_add_test(tc, unix_forms);
	tcase_add_test(tc, unix_abstract);
	tcase_add_test(tc, unix_bad);
	suite_add_tcase(s, tc);
	return s;
}
