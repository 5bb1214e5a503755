import type { Knex } from 'knex';
import type { ChainVerdict } from '../../../libs/audit/chain.js';
import { listAudit, verifyAuditChain, type AuditRowView } from '../../../libs/audit/store.js';
import type { KafkaClient } from '../../../libs/kafka/client.js';
import { consumerGroupsOf, type TopicReaders } from '../../../libs/kafka/groups.js';

/** What the admin routes read: the audit table and the Kafka consumer groups of the clinical topics. */
export interface AdminReader {
  verifyAudit(): Promise<ChainVerdict>;
  auditEvents(q: {
    patientId?: string;
    agent?: string;
    limit: number;
    beforeSeq?: number;
  }): Promise<AuditRowView[]>;
  clinicalReaders(): Promise<TopicReaders[]>;
}

export function createAdminReader(
  db: Knex,
  auditSchema: string,
  kafka: KafkaClient,
  clinicalTopics: readonly string[],
  /** Checks the keyed rows of the audit chain (libs/audit/key.ts). */
  chainKey: Buffer | null = null,
): AdminReader {
  return {
    verifyAudit: () => verifyAuditChain(db, auditSchema, { key: chainKey }),
    auditEvents: (q) => listAudit(db, auditSchema, q),
    clinicalReaders: () => consumerGroupsOf(kafka, clinicalTopics),
  };
}
