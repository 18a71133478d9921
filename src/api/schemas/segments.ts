import { z } from "zod";
import { SEGMENT_STATUSES } from "../../db/schema.js";
import type { listMembers } from "../../domain/segments/members.js";
import type { previewSegment } from "../../domain/segments/preview.js";
import type { SegmentView } from "../../domain/segments/service.js";
import type { SameKeys } from "./common.js";
import { personRefSchema, personSchema } from "./people.js";

/** Response shapes of the segment resource (the service builds the objects; see segmentView); they serialise and document it. */
export const segmentSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  type: z.enum(["dynamic", "static"]),
  // The jsonb column is untyped (unknown) in the view, so the JSON Schema type is given here rather than by a zod record.
  conditions: z.unknown().meta({ type: "object", additionalProperties: true, nullable: true, description: 'the condition tree of a dynamic segment (API.md "Conditions"); null for a static one' }),
  status: z.enum(SEGMENT_STATUSES),
  failureReason: z.string().nullable(),
  memberCount: z.number().int(),
  lastComputedAt: z.string().nullable().describe("ISO-8601 UTC"),
  lastDurationMs: z.number().int().nullable(),
  createdAt: z.string().describe("ISO-8601 UTC"),
  updatedAt: z.string().describe("ISO-8601 UTC"),
});

export const previewSchema = z.object({
  count: z.number().int().describe("people the conditions match now"),
  sample: z.array(personSchema).describe("up to 20 of them, by id"),
});

export const memberSchema = personSchema.extend({
  value: z.string().nullable().describe("membership value, if the segment records one"),
  enteredAt: z.string().describe("ISO-8601 UTC"),
});

const notFound = z.array(personRefSchema).describe("references that name no one in this workspace");
export const membersAddedSchema = z.object({ added: z.number().int().describe("people who were not members before"), notFound, segment: segmentSchema });
export const membersRemovedSchema = z.object({ removed: z.number().int().describe("people who were members before"), notFound, segment: segmentSchema });

// The services build these objects; these checks keep the documented field names in step with them.
const _segment: SameKeys<z.output<typeof segmentSchema>, SegmentView> = true;
const _preview: SameKeys<z.output<typeof previewSchema>, Awaited<ReturnType<typeof previewSegment>>> = true;
const _member: SameKeys<z.output<typeof memberSchema>, Awaited<ReturnType<typeof listMembers>>["data"][number]> = true;
