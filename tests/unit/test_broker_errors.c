/* Storage results (0, LOG_ERR_*, negative errno) as the Kafka error codes responses carry. */
#include <errno.h>

#include "broker/partition.h"
#include "proto/gen/errors.h"
#include "test.h"

TEST(test_storage_errors_map_to_named_kafka_codes)
{
    CHECK_EQ_INT(partition_error_from_storage(0), KAFKA_ERR_NONE);
    CHECK_EQ_INT(partition_error_from_storage(LOG_ERR_OFFSET_OUT_OF_RANGE),
                 KAFKA_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(partition_error_from_storage(LOG_ERR_CORRUPT), KAFKA_ERR_CORRUPT_MESSAGE);
    CHECK_EQ_INT(partition_error_from_storage(LOG_ERR_OFFLINE), KAFKA_ERR_KAFKA_STORAGE_ERROR);
}

TEST(test_errno_from_storage_is_a_storage_error)
{
    CHECK_EQ_INT(partition_error_from_storage(-ENOSPC), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    CHECK_EQ_INT(partition_error_from_storage(-EIO), KAFKA_ERR_KAFKA_STORAGE_ERROR);
    CHECK_EQ_INT(partition_error_from_storage(-ENOMEM), KAFKA_ERR_KAFKA_STORAGE_ERROR);
}

TEST_MAIN
