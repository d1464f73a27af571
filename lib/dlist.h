/*
 * dlist: intrusive doubly linked lists. Any struct with `next` and `prev`
 * pointers to its own type is a node, and a pointer to the first node is
 * the list: push at the head and unlink in O(1), for connections, calls,
 * handler runs and the roles' open streams alike. Macros, so that one
 * definition serves every node type; their arguments are evaluated more
 * than once, so pass plain lvalues.
 */
#ifndef ORCHD_DLIST_H
#define ORCHD_DLIST_H

/* Puts node (not in a list) first in the list head. */
#define DLIST_PUSH(head, node)                                                                     \
	do {                                                                                       \
		(node)->prev = NULL;                                                               \
		(node)->next = (head);                                                             \
		if (head)                                                                          \
			(head)->prev = (node);                                                     \
		(head) = (node);                                                                   \
	} while (0)

/* Takes node out of the list head and clears its links; a node in no list
 * (both links NULL, not the head) is left as it is. */
#define DLIST_UNLINK(head, node)                                                                   \
	do {                                                                                       \
		if ((node)->prev)                                                                  \
			(node)->prev->next = (node)->next;                                         \
		else if ((head) == (node))                                                         \
			(head) = (node)->next;                                                     \
		if ((node)->next)                                                                  \
			(node)->next->prev = (node)->prev;                                         \
		(node)->next = (node)->prev = NULL;                                                \
	} while (0)

#endif
