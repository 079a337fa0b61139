-- Row counts of {classified} by outcome: accepted, excluded (category filter) or the reject reason;
-- excluded rows are also counted by their product_category, so an empty selection can say what the file has.
SELECT
    CASE
        WHEN reject_reason IS NOT NULL THEN reject_reason
        WHEN {category_filter} THEN 'accepted'
        ELSE 'excluded'
    END AS outcome,
    CASE
        WHEN reject_reason IS NULL AND NOT ({category_filter}) THEN product_category
    END AS excluded_category,
    count(*) AS row_count
FROM {classified}
GROUP BY 1, 2
