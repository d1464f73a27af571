/*
 * runner: the one main() of the unit tests. Every lib module contributes a
 * check suite through a `Suite *<module>_suite(void)` function; this file
 * only lists them and runs them all. Exits nonzero if any test failed.
 */
#include <check.h>

#include "log.h"
#include <stdlib.h>

Suite *error_suite(void);
Suite *log_suite(void);
Suite *map_suite(void);
Suite *status_suite(void);
Suite *meta_suite(void);
Suite *frame_suite(void);
Suite *gz_suite(void);
Suite *reflect_suite(void);
Suite *id_suite(void);
Suite *task_suite(void);
Suite *queue_suite(void);
Suite *store_suite(void);
Suite *handler_suite(void);
Suite *scheduler_suite(void);
Suite *coalesce_suite(void);
Suite *sbuf_suite(void);
Suite *utf8_suite(void);
Suite *json_suite(void);
Suite *table_suite(void);
Suite *human_suite(void);
Suite *bar_suite(void);
Suite *opt_suite(void);
Suite *stats_suite(void);
Suite *auth_suite(void);
Suite *pb_suite(void);
Suite *addr_suite(void);

/* Add a module's suite here (and its declaration above), bottom layer
 * first, so a failure in a utility is reported before its users'. One
 * entry per line so concurrent additions merge cleanly. */
/* clang-format off */
static Suite *(*const suites[])(void) = {
	/* utilities */
	error_suite,
	log_suite,
	map_suite,
	id_suite,
	coalesce_suite,
	sbuf_suite,
	utf8_suite,
	opt_suite,
	stats_suite,
	/* client rendering */
	json_suite,
	table_suite,
	human_suite,
	bar_suite,
	/* gRPC wire layer */
	addr_suite,
	status_suite,
	meta_suite,
	frame_suite,
	gz_suite,
	reflect_suite,
	auth_suite,
	pb_suite,
	/* orchestration core */
	task_suite,
	queue_suite,
	store_suite,
	handler_suite,
	scheduler_suite,
};
/* clang-format on */

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;

	/* Modules log as they work; tests read results, not logs. Set
	 * ORCHD_LOG=debug to see them while debugging a test. */
	enum log_level lv = LOG_OFF;
	if (getenv("ORCHD_LOG"))
		log_parse_level(getenv("ORCHD_LOG"), &lv);
	log_set_level(lv);

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
