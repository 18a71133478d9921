import { z } from "zod";
import { DELETION_STATUSES } from "../../db/schema.js";
import type { deletionView } from "../../domain/deletions/service.js";
import type { RouteDocs } from "../plugins/docs.js";
import type { SameKeys } from "./common.js";

/** Response shape of the deletion resource (the service builds it; see deletionView); it serialises and documents it. */
export const deletionObjectSchema = z.object({
  id: z.string(),
  status: z.enum(DELETION_STATUSES),
  selector: z.enum(["users", "segment", "conditions"]).describe("which selector the request used; the selector itself is not kept once resolved"),
  dryRun: z.boolean().describe("true: people were only counted (matched), nobody was erased"),
  matched: z.number().int().nullable().describe("people the selector matched when the run took its snapshot (at once for `users`); null until then"),
  deleted: z.number().int().describe("people erased so far, counted as each batch commits"),
  createdAt: z.string().describe("ISO-8601 UTC"),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  failureReason: z.string().nullable(),
});

const _deletion: SameKeys<z.output<typeof deletionObjectSchema>, ReturnType<typeof deletionView>> = true;

/** Route documentation beside the declared responses (src/api/routes/deletions.ts). */
export const deletionDocs = {
  create: {
    summary: "Erase many people as a job (exactly one of users, segmentId, conditions; dryRun only counts)",
    description:
      "People named in `users` are resolved at once (references naming no one are not counted); a segment's members or the people matching `conditions` are resolved when the job starts. Each person is erased as by DELETE /v1/users/:id. After a real run that erased anyone, the workspace's ended imports' uploads and finished exports' files are deleted too (they may hold the erased people).",
  },
  list: { summary: "Deletions, newest first" },
  get: { summary: "A deletion" },
  eraseUser: {
    summary: "Erase one person: fields, attributes, labels, segment memberships (counts follow) and events",
    description:
      "No segment.left event is written (it would be a record of the erased person). The workspace's ended imports' uploads and finished exports' files are deleted as well, since they may hold the person. A later import or identify of the same email creates a new person.",
  },
} satisfies Record<string, RouteDocs>;
