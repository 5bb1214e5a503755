import { describe, expect, it } from 'vitest';
import { reconcileText } from './topics.js';

describe('reconcileText', () => {
  it('given a reconcile report, then one line per topic with what was fixed and what is left, then the warnings', () => {
    // given
    const settings = {
      partitions: 6,
      replicationFactor: 3,
      minInsyncReplicas: 2,
      uncleanLeaderElection: false,
    };
    const text = reconcileText({
      environment: 'production',
      brokers: 3,
      topics: [
        { name: 'a.v1', action: 'created', settings, fixed: [], drift: [], warnings: [] },
        {
          name: 'b.v1',
          action: 'drift',
          settings,
          fixed: [
            { setting: 'unclean.leader.election.enable', actual: 'true', wanted: 'false', remedy: 'alter' },
          ],
          drift: [
            {
              setting: 'replication.factor',
              actual: '1',
              wanted: '3',
              remedy: 'reassign',
              note: 'move replicas',
            },
          ],
          warnings: ['partitions 3 -> 6 only with --increase-partitions'],
        },
      ],
    });
    // then
    expect(text.split('\n')).toEqual([
      'environment production (3 brokers); replication shown as factor/min.insync.replicas',
      'NAME  ACTION   REPLICATION  PARTITIONS  DETAILS',
      'a.v1  created  3/2          6',
      'b.v1  drift    3/2          6           fixed unclean.leader.election.enable true -> false; replication.factor 1 -> 3 (move replicas)',
      'warning: b.v1: partitions 3 -> 6 only with --increase-partitions',
    ]);
  });
});
