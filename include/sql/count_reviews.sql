-- Row counts of {classified} by outcome: accepted, excluded (category filter) or the reject reason.
SELECT
    CASE
        WHEN reject_reason IS NOT NULL THEN reject_reason
        WHEN {category_filter} THEN 'accepted'
        ELSE 'excluded'
    END AS outcome,
    count(*) AS row_count
FROM {classified}
GROUP BY 1
