/* tests/unit/test.h itself: cleanups registered by a case run however the case ends. */
#include <unistd.h>

#include "test.h"
#include "test_storage_util.h"

static char made_dir[64];

/* A case that makes a temporary directory and then fails a CHECK (which returns early). */
static void failing_case(int *failed_)
{
    char *dir = tmpdir_make();
    CHECK(dir != NULL);
    snprintf(made_dir, sizeof(made_dir), "%s", dir);
    printf("  (the next CHECK failure is expected)\n");
    CHECK(dir == NULL);
}

TEST(test_failed_check_still_removes_its_temp_dir)
{
    int failed = 0;
    failing_case(&failed);
    CHECK_EQ_INT(failed, 1);
    CHECK(made_dir[0] != 0);
    CHECK(access(made_dir, F_OK) == 0); /* kept until the runner's cleanup */
    test_run_cleanups();
    CHECK(access(made_dir, F_OK) != 0);
}

static int order[3], norder;

static void record_order(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}

TEST(test_cleanups_run_last_registered_first)
{
    norder = 0;
    for (intptr_t i = 1; i <= 3; i++)
        test_defer(record_order, (void *)i);
    test_run_cleanups();
    CHECK_EQ_INT(norder, 3);
    CHECK(order[0] == 3 && order[1] == 2 && order[2] == 1);
}

TEST_MAIN
