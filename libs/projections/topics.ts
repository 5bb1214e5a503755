import { TOPIC_CATALOG } from '../events/index.js';

/** The four clinical topics every read model consumes, optionally renamed (suffix for tests/tenants). */
export function clinicalTopics(nameFor: (catalogName: string) => string = (n) => n): string[] {
  return TOPIC_CATALOG.map((t) => nameFor(t.name));
}
