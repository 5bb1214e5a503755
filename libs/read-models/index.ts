import type { Projection } from '../projections/runner.js';
import type { VersionHooks } from '../projections/versions.js';
import type { IsRegistered } from './analytics/authorities.js';
import { ANALYTICS_VERSION_HOOKS, analyticsProjection } from './analytics/model.js';
import { BILLING_VERSION_HOOKS, billingProjection } from './billing/model.js';
import { portalProjection } from './portal/model.js';

/**
 * What a read model's projection depends on besides the topics. A thunk, so
 * that configuration only the analytics model reads (the site's registered
 * authorities) is loaded, and can fail, only when that model is built.
 */
export interface ReadModelOptions {
  /** Default: no identifier system is registered. */
  registeredSystems?: () => IsRegistered;
}

export interface ReadModelDefinition {
  projection(topics: readonly string[], opts?: ReadModelOptions): Projection;
  /** Passed to every switch of its versions (the projector's start, `hub projections rebuild`). */
  hooks: VersionHooks;
}

/**
 * The hub's read models by name (the stable schema they default to), for
 * the tools that build one without its service: `hub projections
 * rebuild|hash` and the replay benchmark. Each projector service composes
 * the same definition with its HTTP routes.
 */
export const READ_MODELS = {
  portal: { projection: (topics) => portalProjection(topics), hooks: {} },
  billing: { projection: (topics) => billingProjection(topics), hooks: BILLING_VERSION_HOOKS },
  analytics: {
    projection: (topics, opts) => analyticsProjection(topics, opts?.registeredSystems?.()),
    hooks: ANALYTICS_VERSION_HOOKS,
  },
} as const satisfies Record<string, ReadModelDefinition>;

export type ReadModelName = keyof typeof READ_MODELS;

export const READ_MODEL_NAMES = Object.keys(READ_MODELS) as ReadModelName[];

/** The definition of a read model by name, or undefined for a name the hub does not have. */
export function readModelNamed(name: string): ReadModelDefinition | undefined {
  return Object.hasOwn(READ_MODELS, name) ? READ_MODELS[name as ReadModelName] : undefined;
}
