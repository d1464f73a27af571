/*
 * health: the health services every role serves. Owns the standard
 * grpc.health.v1.Health (Check and Watch, see grpc/grpc's
 * doc/health-checking.md) and orchestrator.v1's <Service>/HealthCheck, both
 * answered from one serving flag, role name and start time. Watch streams
 * are told of every change of the flag.
 */
#ifndef ORCHD_HEALTH_H
#define ORCHD_HEALTH_H

#include "rpc.h"

struct health;

/* Registers grpc.health.v1.Health on srv and "/<service>/HealthCheck" for
 * each name in services (NULL-terminated, e.g. "orchestrator.v1.Gateway").
 * role is borrowed (a literal). Starts SERVING. */
struct health *health_new(struct rpc_server *srv, const char *role, const char *const *services);
/* Frees the health state; Watch streams still open end with UNAVAILABLE.
 * Call before rpc_server_del. NULL: no-op. */
void health_del(struct health *h);
/* Sets the serving flag; open Watch streams get the new status. */
void health_set_serving(struct health *h, int serving);
int health_serving(const struct health *h);

#endif
