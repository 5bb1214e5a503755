import { z } from 'zod';
import type { MatchWeights } from '../matching/types.js';

const probability = z.number().gt(0).lt(1);

/** The shape of a weights file (as `npm run empi:train` writes weights.json). */
export const matchWeightsSchema = z
  .object({
    version: z.string().min(1),
    fields: z.record(z.string(), z.record(z.string(), z.object({ m: probability, u: probability }))),
    upper: z.number(),
    lower: z.number(),
  })
  .refine((w) => w.lower <= w.upper, { message: 'lower must not exceed upper' });

/** A weights file's text, checked; throws a ZodError (paths, never values) when it is not one. */
export function parseMatchWeights(text: string): MatchWeights {
  return matchWeightsSchema.parse(JSON.parse(text));
}
