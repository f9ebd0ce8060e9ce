{#-
    What each cleaning rule of the event layer removed, per step and source table: the rules of a step apply in
    order, each to the rows the previous ones kept, so that rows_in of a rule is rows_kept of the one before and
    the first rule's rows_in is every row the step read from that table. Tables without rows are left out.
-#}
{%- set steps = [
    ('claim_lines', 'int_claim_lines_flagged', [
        ('no_claim_line', 'DCIR satellite line without its ER_PRS_F line of the same year (nine keys)'),
        ('information_only_line', 'ER_PRS_F line sent for information only (DPN_QLF = 71)'),
        ('missing_person', 'no person pseudonym (BEN_NIR_PSA)'),
        ('missing_date', 'no care date (EXE_SOI_DTD)'),
    ]),
    ('stays', 'int_stays_flagged', [
        ('no_patient_link', 'MCO stay (B) without its C row (ETA_NUM + RSA_NUM)'),
        ('quality_codes', 'a linkage quality code (NIR_RET NAI_RET SEX_RET SEJ_RET FHO_RET PMS_RET DAT_RET) is not 0'),
        ('placeholder_person', 'the PMSI placeholder of an unknown patient (var snds_person_placeholders)'),
        ('missing_person', 'no person pseudonym (NIR_ANO_17)'),
        ('error_ghm', 'MCO error group: GHM (GRG_GHM) starting with 90'),
        ('missing_date', 'no admission date (EXE_SOI_DTD nor ENT_DAT)'),
    ]),
    ('stay_codes', 'int_stay_codes_flagged', [
        ('stay_removed', 'diagnosis or act of a stay that is not kept'),
        ('missing_code', 'empty code'),
        ('repeated_code', 'code repeated by another SSR, HAD or RIM-P week or sequence row of the same stay'),
    ]),
    ('alds', 'int_alds_flagged', [
        ('missing_person', 'no person pseudonym (BEN_NIR_PSA)'),
        ('missing_date', 'no start date (IMB_ALD_DTD empty or 1600-01-01)'),
    ]),
    ('deaths', 'int_deaths_flagged', [
        ('no_death_date', 'IR_BEN_R person alive or of unknown death (BEN_DCD_DTE empty or 1600-01-01)'),
        ('missing_person', 'no person pseudonym (BEN_NIR_PSA)'),
        ('no_beneficiary', 'KI_CCI_R death whose BEN_IDT_ANO no IR_BEN_R row holds'),
        ('missing_date', 'no date of death'),
    ]),
] -%}

with

{% for step, model, rules in steps %}
{{ step }}_counts as (
    select
        source_table,
        cleaning_rule,
        count(*) as row_count
    from {{ ref(model) }}
    group by source_table, cleaning_rule
),

{{ step }}_tables as (
    select
        source_table,
        sum(row_count) as row_count
    from {{ step }}_counts
    group by source_table
),

{{ step }}_removed as (
    {%- for rule, description in rules %}
    select
        '{{ step }}' as step,
        tables.source_table,
        {{ loop.index }} as rule_order,
        '{{ rule }}' as rule_name,
        '{{ description }}' as rule_description,
        tables.row_count as table_rows,
        coalesce(counts.row_count, 0) as rows_removed
    from {{ step }}_tables tables
    left join {{ step }}_counts counts
        on tables.source_table = counts.source_table and counts.cleaning_rule = '{{ rule }}'
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{% endfor -%}
unioned as (
    {%- for step, model, rules in steps %}
    select * from {{ step }}_removed
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        cast(step as varchar(16)) as step,
        cast(source_table as varchar(32)) as source_table,
        cast(rule_order as integer) as rule_order,
        cast(rule_name as varchar(32)) as rule_name,
        cast(rule_description as varchar(200)) as rule_description,
        cast(table_rows - coalesce(sum(rows_removed) over (
            partition by step, source_table order by rule_order rows between unbounded preceding and 1 preceding
        ), 0) as numeric(18)) as rows_in,
        cast(rows_removed as numeric(18)) as rows_removed,
        cast(table_rows - sum(rows_removed) over (
            partition by step, source_table order by rule_order rows between unbounded preceding and current row
        ) as numeric(18)) as rows_kept
    from unioned
)

select * from final
