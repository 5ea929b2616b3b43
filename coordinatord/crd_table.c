/*
 * crd_table.c — what the coordinator holds in memory: the in-flight
 * transactions (a hash table on the sequence, and a list for scans), the
 * participant registry, and the in-doubt branches left to the operator.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crd_int.h"

crd_tx_t *crd_tx_alloc(uint32_t nbranches)
{
	crd_tx_t *tx = calloc(1, sizeof(*tx) + nbranches * sizeof(crd_branch_t));
	if (!tx)
		return NULL;
	tx->nbranches = nbranches;
	tx->client_slot = -1;
	for (uint32_t i = 0; i < nbranches; i++)
		tx->br[i].vote = CRD_VOTE_NONE;
	return tx;
}

crd_tx_t *crd_tx_find(crd_t *self, uint64_t seq)
{
	for (crd_tx_t *t = self->buckets[seq & (self->nbuckets - 1)]; t; t = t->hnext)
		if (t->seq == seq)
			return t;
	return NULL;
}

int crd_tx_insert(crd_t *self, crd_tx_t *tx)
{
	if (self->ntx + 1 > self->nbuckets) {
		size_t nb = self->nbuckets * 2;
		crd_tx_t **b = calloc(nb, sizeof(*b));
		if (!b)
			return DTX_ENOMEM;
		for (size_t i = 0; i < self->nbuckets; i++)
			for (crd_tx_t *t = self->buckets[i], *n; t; t = n) {
				n = t->hnext;
				t->hnext = b[t->seq & (nb - 1)];
				b[t->seq & (nb - 1)] = t;
			}
		free(self->buckets);
		self->buckets = b;
		self->nbuckets = nb;
	}
	crd_tx_t **slot = &self->buckets[tx->seq & (self->nbuckets - 1)];
	tx->hnext = *slot;
	*slot = tx;
	tx->prev = NULL;
	tx->next = self->head;
	if (self->head)
		self->head->prev = tx;
	self->head = tx;
	self->ntx++;
	return 0;
}

void crd_tx_forget(crd_t *self, crd_tx_t *tx)
{
	crd_tx_t **pp = &self->buckets[tx->seq & (self->nbuckets - 1)];
	while (*pp != tx)
		pp = &(*pp)->hnext;
	*pp = tx->hnext;
	if (tx->prev)
		tx->prev->next = tx->next;
	else
		self->head = tx->next;
	if (tx->next)
		tx->next->prev = tx->prev;
	self->ntx--;
	if (tx->client_slot >= 0)
		self->client_load[tx->client_slot].inflight--;
	dtx_msg_clear(&tx->req);
	free(tx);
}

void crd_tx_gtid(const crd_t *self, const crd_tx_t *tx, char *buf, size_t len)
{
	dtx_gtid_t g = {.epoch = tx->epoch, .seq = tx->seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gtid_format(&g, buf, len);
}

void crd_tx_gid(const crd_t *self, const crd_tx_t *tx, uint32_t branch, char *buf, size_t len)
{
	dtx_gtid_t g = {.epoch = tx->epoch, .seq = tx->seq};
	snprintf(g.coord, sizeof(g.coord), "%s", self->cfg.id);
	dtx_gid_format(&g, branch, buf, len);
}

crd_tx_t *crd_tx_by_gid(crd_t *self, const char *gid, uint32_t *branch, dtx_gtid_t *g, bool *ours,
			bool *known)
{
	*ours = *known = false;
	if (dtx_gid_parse(gid, g, branch) || strcmp(g->coord, self->cfg.id) != 0)
		return NULL;
	*ours = true;
	*known = crd_epoch_known(self, g->epoch);
	crd_tx_t *tx = crd_tx_find(self, g->seq);
	if (tx && (tx->epoch != g->epoch || *branch >= tx->nbranches))
		return NULL;
	return tx;
}

int crd_part_index(const crd_t *self, const char *name)
{
	for (unsigned i = 0; i < self->nparts; i++)
		if (strcmp(self->parts[i].name, name) == 0)
			return (int)i;
	return -1;
}

crd_part_t *crd_part_by_peer(crd_t *self, const dtx_peer_t *peer)
{
	for (unsigned i = 0; i < self->nparts; i++)
		if (self->parts[i].connected && self->parts[i].peer.n == peer->n &&
		    memcmp(self->parts[i].peer.id, peer->id, peer->n) == 0)
			return &self->parts[i];
	return NULL;
}

void crd_orphan_add(crd_t *self, const char *gid, const dtx_gtid_t *g, const char *part,
		    bool pruned)
{
	for (unsigned k = 0; k < self->norphans; k++)
		if (strcmp(self->orphans[k].gid, gid) == 0 &&
		    strcmp(self->orphans[k].part, part) == 0)
			return;
	if (self->norphans == self->orphans_cap) {
		unsigned cap = self->orphans_cap ? 2 * self->orphans_cap : 16;
		crd_orphan_t *o = realloc(self->orphans, cap * sizeof(*o));
		if (!o) {
			dtx_log_ctx(DTX_LOG_ERR, gid, part,
				    "%s on %s: out of memory: not listed as in doubt (it will be "
				    "reported again at the agent's next scan)",
				    gid, part);
			return;
		}
		self->orphans = o;
		self->orphans_cap = cap;
	}
	crd_orphan_t *o = &self->orphans[self->norphans++];
	snprintf(o->gid, sizeof(o->gid), "%s", gid);
	snprintf(o->part, sizeof(o->part), "%s", part);
	o->g = *g;
	o->pruned = pruned;
}

int crd_orphan_find(const crd_t *self, const dtx_gtid_t *g, unsigned from)
{
	for (unsigned i = from; i < self->norphans; i++) {
		const dtx_gtid_t *og = &self->orphans[i].g;
		if (og->epoch == g->epoch && og->seq == g->seq && strcmp(og->coord, g->coord) == 0)
			return (int)i;
	}
	return -1;
}

void crd_orphan_drop(crd_t *self, unsigned i)
{
	memmove(&self->orphans[i], &self->orphans[i + 1],
		(self->norphans - i - 1) * sizeof(self->orphans[0]));
	self->norphans--;
}

const char *crd_orphan_why(const crd_t *self, unsigned i)
{
	return self->orphans[i].pruned ? "pruned from this log: it may have committed"
				       : "epoch unknown to this log";
}
