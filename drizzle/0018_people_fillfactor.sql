-- People are updated in place by every re-import that changes them (names, attributes, labels). With pages filled to
-- the brim, each update wrote its new row version to another page and a new entry into every index on people (six
-- B-trees and the labels' GIN): a non-HOT update. A tenth of each page left free lets an update that changes no indexed
-- column (a name, an attribute, updated_at) stay on its page with no index entry (HOT): 4,000 attribute updates took
-- 70-79 ms on full pages, 40 ms with fillfactor 90 (BENCHMARKS.md, 2026-11-30, sixth session). New pages (new people,
-- moved rows) are filled to 90% from now on; existing pages keep their rows until rewritten (VACUUM FULL people, in a
-- maintenance window, applies it to all of them at once).
ALTER TABLE "people" SET (fillfactor = 90);
