/*
 * The Kafka error codes the cluster layer returns in command completions: data carried back to
 * admin handlers, named as Kafka names them. One definition for the whole code base, generated
 * from Kafka's errors.csv into proto/gen/errors.h.
 */
#ifndef GREGOR_CLUSTER_KAFKA_ERRORS_H
#define GREGOR_CLUSTER_KAFKA_ERRORS_H

#include "proto/gen/errors.h"

#endif
